#!/usr/bin/env bash
# make demo: a whole simulated township on this machine.
#   townsim   field devices on PTYs (firmware-sim/)
#   broker    an embedded MQTT broker standing in for the county
#   townlink  the gateway, with examples/demo.yaml
#   tail      the platform side: decoded records as they arrive; Ctrl-C for the verdict
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
demo="$root/.demo"
port=${DEMO_PORT:-18830}
field=${DEMO_FIELD_PORT:-18831}
rm -rf "$demo"; mkdir -p "$demo/dev" "$demo/data" "$demo/secrets"
for d in zfy-001 hall-kiosk-1; do head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$demo/secrets/$d.pw"; done
echo demo >"$demo/secrets/web.pw"   # the local page's password
chmod 600 "$demo"/secrets/*.pw
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

bin/townlink broker -listen "127.0.0.1:$port" >"$demo/broker.log" 2>&1 & pids+=($!); broker_pid=$!
mkfifo "$demo/townsim.ctl"
# townsim reads commands from a FIFO (opened read-write so it never sees EOF):
#   echo 'fault 2 silent' > .demo/townsim.ctl
bin/townsim -dir "$demo/dev" <>"$demo/townsim.ctl" >"$demo/townsim.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do grep -q '^ready' "$demo/townsim.log" 2>/dev/null && break; sleep 0.1; done
grep -q '^ready' "$demo/townsim.log" || { echo "townsim did not start:"; cat "$demo/townsim.log"; exit 1; }
sed -e "s|@DEMO@|$demo|g" -e "s|@BROKER@|127.0.0.1:$port|g" -e "s|@FIELD@|$field|g" examples/demo.yaml >"$demo/townlink.yaml"
bin/townlink check "$demo/townlink.yaml"
# The gateway's identity key (made now, at first use): the platform side
# checks every evidence signature with it, as the county would.
pub=$(bin/townlink id -c "$demo/townlink.yaml" 2>/dev/null)
bin/townlink run -c "$demo/townlink.yaml" >"$demo/gateway.log" 2>&1 & pids+=($!); gateway_pid=$!
# A recorder on an officer's shift and the hall's kiosk, 60× faster than life.
bin/fieldsim -broker "tcp://127.0.0.1:$field" -speed 60 \
  -recorder "zfy-001:$(cat "$demo/secrets/zfy-001.pw")" -kiosk "hall-kiosk-1:$(cat "$demo/secrets/hall-kiosk-1.pw")" \
  >"$demo/fieldsim.log" 2>&1 & pids+=($!)

cat <<MSG

== Townlink demo
   field devices (townsim):  $(grep -c '^line' "$demo/townsim.log") serial lines on PTYs and $(grep -c '^gpio' "$demo/townsim.log") GPIO inputs, see $demo/townsim.log
   recorder and kiosk:       fieldsim → the gateway's field broker on 127.0.0.1:$field, see $demo/fieldsim.log
   gateway log:              $demo/gateway.log
   local page:               http://127.0.0.1:18880/   (actions after login, password: demo)
   the gateway now:          bin/townlink status -c $demo/townlink.yaml
   county broker:            tcp://127.0.0.1:$port   (watch raw: mosquitto_sub -h 127.0.0.1 -p $port -v -t 'townlink/#')
   an outage:                kill $broker_pid (the broker), then: bin/townlink broker -listen 127.0.0.1:$port >>$demo/broker.log 2>&1 &
   a crash:                  kill -9 $gateway_pid (the gateway), then: bin/townlink run -c $demo/townlink.yaml >>$demo/gateway.log 2>&1 &
                             (what you start by hand is yours to stop after Ctrl-C)
   make a device misbehave:  echo 'fault 2 silent' > $demo/townsim.ctl   (and 'fault 2 none'; 'help' in townsim.log)
   early warning:            the plant's COD crosses its permit within a minute: !!! ALARM RAISED, then === ALARM CLEARED;
                             the recorder's SOS presses raise and clear the default rule sos, with the officer's position;
                             more: echo 'phase 202611300001 b lose' (or 'outage RS485-2 on', 'leak 20261130000101 3600') > $demo/townsim.ctl
   Ctrl-C stops everything and prints the platform's verdict.

MSG
bin/townlink tail -broker "tcp://127.0.0.1:$port" -id demo-platform -pub "$pub" || true
