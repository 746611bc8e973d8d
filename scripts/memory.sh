#!/usr/bin/env bash
# Memory of a running gateway at a field-like load: the demo township's
# devices (townsim) polled at about ten readings a second, a county broker,
# no backlog. Prints VmRSS (total resident) and RssAnon (private memory)
# after a warm-up, next to the goals. Used by make bench.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
port=${MEM_PORT:-18840}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
mkdir -p "$dir/dev" "$dir/data" "$dir/secrets"
bin/townlink broker -listen "127.0.0.1:$port" >"$dir/broker.log" 2>&1 & pids+=($!)
bin/townsim -dir "$dir/dev" -gpio none </dev/null >"$dir/townsim.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do grep -q '^ready' "$dir/townsim.log" 2>/dev/null && break; sleep 0.1; done
cat >"$dir/townlink.yaml" <<YAML
gateway: {id: gw-mem-01, county: "320583", township: "320583104", data_dir: "$dir/data"}
uplink: {brokers: ["tcp://127.0.0.1:$port"]}
lines:
  - {name: RS485-1, port: "$dir/dev/RS485-1", baud: 9600}
  - {name: RS485-2, port: "$dir/dev/RS485-2", baud: 2400, parity: even}
devices:
  - {id: chem, kind: enterprise, driver: modbus, line: RS485-1, unit: 1, interval: 200ms, timeout: 150ms, points: [{name: cod_mg_l, table: holding, address: 0, type: float32}, {name: temp_c, table: input, address: 10, type: int16, scale: 0.1}]}
  - {id: boiler, kind: enterprise, driver: modbus, line: RS485-1, unit: 2, interval: 200ms, timeout: 150ms, points: [{name: pressure_kpa, table: holding, address: 0, type: uint16}]}
  - {id: m1, kind: power, driver: dlt645, line: RS485-2, address: "202611300001", interval: 1s, timeout: 500ms}
  - {id: m2, kind: power, driver: dlt645, line: RS485-2, address: "202611300002", interval: 1s, timeout: 500ms}
YAML
bin/townlink run -c "$dir/townlink.yaml" >"$dir/gateway.log" 2>&1 & gw=$!; pids+=($gw)
sleep "${MEM_WARMUP:-30}"
rss=$(awk '/^VmRSS/{print $2}' /proc/$gw/status)
anon=$(awk '/^RssAnon/{print $2}' /proc/$gw/status)
printf '%-52s %10s   (goal ≤ 26 MB)\n' "gateway VmRSS at ~10 readings/s, no backlog" "$((rss/1024)) MB"
printf '%-52s %10s\n' "gateway RssAnon at ~10 readings/s, no backlog" "$((anon/1024)) MB"
