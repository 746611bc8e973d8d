#!/usr/bin/env bash
# make bench: Townlink's rates next to the machine's limits, measured in the
# same run on this machine:
#   raw Badger group commit (1000 synced entries per transaction)  — the disk's limit
#   the queue's append rate (badgerq, concurrent appenders)
#   raw paho → mosquitto QoS 1 (100 readings per message, window)  — the broker's limit
#   the raw pipeline: the same path with none of Townlink's code               — the path's limit
#   Townlink end to end: pipeline → Badger queue → forwarder → paho → mosquitto → subscriber
# Raw output goes to bench.out (BENCH_OUT to change); the table to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-bench.out}
N=${BENCH_N:-300000}
: >"$out"
run() { echo "== go test $*" | tee -a "$out" >&2; go test -run '^$' "$@" 2>&1 | tee -a "$out" | grep -E '^Benchmark' >&2 || true; }

run -bench 'BenchmarkRawBadgerGroupCommit$' -benchtime "${N}x" ./uplink/badgerq
run -bench 'BenchmarkQueueAppend/appenders=1024$' -benchtime "${N}x" ./uplink/badgerq
run -bench 'BenchmarkDrain$' -benchtime 3x ./uplink/badgerq
run -bench 'BenchmarkRawPahoQoS1$' -benchtime 3000x ./uplink/mqttpub
run -bench 'BenchmarkRawPipeline$' -benchtime "${N}x" ./gateway
run -bench 'BenchmarkEndToEnd$' -benchtime "${N}x" ./gateway

metric() { # metric BENCH-REGEX UNIT
  grep -E "^$1" "$out" | tail -1 | awk -v u="$2" '{for (i=2;i<=NF;i++) if ($i==u) {printf "%.0f", $(i-1); exit}}'
}
badger=$(metric 'BenchmarkRawBadgerGroupCommit' entries/s)
queue=$(metric 'BenchmarkQueueAppend/appenders=1024' entries/s)
drain=$(metric 'BenchmarkDrain' entries/s)
paho=$(metric 'BenchmarkRawPahoQoS1' readings/s)
e2e=$(metric 'BenchmarkEndToEnd' readings/s)
rawpipe=$(metric 'BenchmarkRawPipeline' readings/s)
echo
echo "Townlink bench on $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ) (raw output: $out)"
printf '%-52s %14s\n' "measure" "per second"
printf '%-52s %14s\n' "raw Badger group commit (limit: disk)" "$badger"
printf '%-52s %14s\n' "badgerq append, 1024 appenders" "$queue"
printf '%-52s %14s\n' "badgerq drain (peek+ack of a backlog)" "$drain"
printf '%-52s %14s\n' "raw paho→mosquitto QoS 1 (limit: broker)" "$paho"
printf '%-52s %14s\n' "raw pipeline (Badger 1000/txn → 100/msg QoS 1) (limit)" "$rawpipe"
printf '%-52s %14s   (goal ≥ 50000)\n' "Townlink end to end (durable, to a subscriber)" "$e2e"
if [ -n "$e2e" ] && [ -n "$rawpipe" ] && [ "$rawpipe" -gt 0 ]; then
  awk -v e="$e2e" -v l="$rawpipe" 'BEGIN{printf "%-52s %13.0f%%   (goal ≥ 50%%)\n", "end to end / raw pipeline", 100*e/l}'
fi
