#!/usr/bin/env bash
# make bench: Townlink's rates next to the machine's limits, measured in the
# same run on this machine:
#   raw Badger group commit (1000 synced entries per transaction)  — the disk's limit
#   the queue's append rate (badgerq, concurrent appenders)
#   raw paho → mosquitto QoS 1 (100 readings per message, window)  — the broker's limit
#   the raw pipeline: the same path with none of Townlink's code (Badger 1000 synced
#     entries per transaction, 100 readings per QoS 1 message, window 100,
#     deletes riding in the next write)                            — the path's limit
#   the same raw pipeline on Badger configured as the queue configures it
#     (LowMemory profile, within the gateway's memory goal)
#   the same raw pipelines storing 100 records per Badger value (the queue's
#     layout), on Badger's defaults and on the queue's profile
#   Townlink end to end: pipeline → Badger queue → forwarder → paho → mosquitto → subscriber
#   the serial line owner: 32 DL/T 645 meters on one 2400 8E1 line (wire time
#   emulated by the simulators) against the computed wire-time limit, and the
#   cost of one dead meter per back-off window
# Raw output goes to bench.out (BENCH_OUT to change); the table to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-bench.out}
N=${BENCH_N:-300000}
ROUNDS=${BENCH_ROUNDS:-3}
# The rules' cost is a tenth of the path at most, smaller than one round's
# noise: its comparison runs longer and more often.
RULES_N=${BENCH_RULES_N:-1000000}
RULES_ROUNDS=${BENCH_RULES_ROUNDS:-5}
LINE_N=${BENCH_LINE_N:-64} # line-owner transactions (~0.24 s each at 2400 8E1)
: >"$out"
run() { echo "== go test $*" | tee -a "$out" >&2; go test -run '^$' "$@" 2>&1 | tee -a "$out" | grep -E '^Benchmark' >&2 || true; }

run -bench 'BenchmarkRawBadgerGroupCommit$' -benchtime "${N}x" ./uplink/badgerq
run -bench 'BenchmarkQueueAppend/appenders=1024$' -benchtime "${N}x" ./uplink/badgerq
run -bench 'BenchmarkDrain$' -benchtime 3x ./uplink/badgerq
run -bench 'BenchmarkRawPahoQoS1$' -benchtime 3000x ./uplink/mqttpub
TOWNLINK_DRAIN_N=${BENCH_DRAIN_N:-1000000} run -bench 'BenchmarkDrainBacklogWithLive$' -benchtime 1x ./uplink/badgerq
# The raw pipeline and the end-to-end path alternate, ROUNDS times each, so
# both see the same machine; the table shows the median of each and the
# median of the per-round ratios.
for r in $(seq "$ROUNDS"); do
  echo "== round $r, load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)" | tee -a "$out" >&2
  run -bench 'BenchmarkRawPipeline$' -benchtime "${N}x" ./gateway
  run -bench 'BenchmarkRawPipelineQueueProfile$' -benchtime "${N}x" ./gateway
  run -bench 'BenchmarkRawPipelineSegments$' -benchtime "${N}x" ./gateway
  run -bench 'BenchmarkRawPipelineSegmentsQueueProfile$' -benchtime "${N}x" ./gateway
  run -bench 'BenchmarkEndToEnd$' -benchtime "${N}x" ./gateway
  run -bench 'BenchmarkEndToEndServerProfile$' -benchtime "${N}x" ./gateway
done
run -bench 'BenchmarkRulesObserve$' -benchtime "${N}x" ./gateway
# Without and with rules alternate, RULES_ROUNDS times (the median ratio is shown).
for r in $(seq "$RULES_ROUNDS"); do
  run -bench 'BenchmarkEndToEndRules$' -benchtime "${RULES_N}x" ./gateway
done
run -bench 'BenchmarkLineOwner32Meters' -benchtime "${LINE_N}x" ./gateway/bus
run -bench 'BenchmarkLineOwnerDeadMeter$' -benchtime "${LINE_N}x" ./gateway/bus

metric() { # metric BENCH-REGEX UNIT [DECIMALS]
  grep -E "^$1" "$out" | tail -1 | awk -v u="$2" -v d="${3:-0}" '{for (i=2;i<=NF;i++) if ($i==u) {printf "%.*f", d, $(i-1); exit}}'
}
values() { # values BENCH-REGEX UNIT: every run's value, one a line
  grep -E "^$1" "$out" | awk -v u="$2" '{for (i=2;i<=NF;i++) if ($i==u) {print $(i-1); break}}'
}
median() { sort -g | awk '{v[NR]=$1} END{if (NR) printf "%.0f", (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
pairs() { paste <(values "$1" readings/s) <(values "$2" readings/s); } # pairs A B: A's and B's readings/s, a round a line
ratio_of() { pairs "$1" "$2" | awk '$2 > 0 {print 100*$1/$2}' | median; } # median of the per-round ratios A/B, %
rounds_of() { pairs "$1" "$2" | awk '$2 > 0 {printf "%s%.0f/%.0f=%.0f%%", (NR > 1 ? ", " : ""), $1, $2, 100*$1/$2}'; }
badger=$(metric 'BenchmarkRawBadgerGroupCommit' entries/s)
queue=$(metric 'BenchmarkQueueAppend/appenders=1024' entries/s)
drain=$(metric 'BenchmarkDrain-' entries/s)
paho=$(metric 'BenchmarkRawPahoQoS1' readings/s)
e2e=$(values 'BenchmarkEndToEnd-' readings/s | median)
e2eserver=$(values 'BenchmarkEndToEndServerProfile-' readings/s | median)
rawpipe=$(values 'BenchmarkRawPipeline-' readings/s | median)
rawqueue=$(values 'BenchmarkRawPipelineQueueProfile-' readings/s | median)
rawseg=$(values 'BenchmarkRawPipelineSegments-' readings/s | median)
rawsegq=$(values 'BenchmarkRawPipelineSegmentsQueueProfile-' readings/s | median)
ratiosegq=$(ratio_of 'BenchmarkEndToEnd-' 'BenchmarkRawPipelineSegmentsQueueProfile-')
ratiosegs=$(ratio_of 'BenchmarkEndToEndServerProfile-' 'BenchmarkRawPipelineSegments-')
ratioseg=$(ratio_of 'BenchmarkEndToEnd-' 'BenchmarkRawPipelineSegments-')
ratio=$(ratio_of 'BenchmarkEndToEnd-' 'BenchmarkRawPipeline-')
ratioq=$(ratio_of 'BenchmarkEndToEnd-' 'BenchmarkRawPipelineQueueProfile-')
ratios=$(ratio_of 'BenchmarkEndToEndServerProfile-' 'BenchmarkRawPipeline-')
echo
echo "Townlink bench on $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown) (raw output: $out)"
printf '%-52s %14s\n' "measure" "per second"
printf '%-52s %14s\n' "raw Badger group commit (limit: disk)" "$badger"
printf '%-52s %14s\n' "badgerq append, 1024 appenders" "$queue"
printf '%-52s %14s\n' "badgerq drain (peek+ack of a backlog)" "$drain"
printf '%-52s %14s   (goal ≥ 50000; live records: worst %s ms after Append)\n' "1M-record backlog drained with live records arriving" \
  "$(metric 'BenchmarkDrainBacklogWithLive' backlog_rec/s)" "$(metric 'BenchmarkDrainBacklogWithLive' live_max_ms 0)"
printf '%-52s %14s\n' "raw paho→mosquitto QoS 1 (limit: broker)" "$paho"
printf '%-52s %14s\n' "raw pipeline (Badger 1000/txn, 100/msg, window 100)" "$rawpipe"
printf '%-52s %14s\n' "  the same on the queue's Badger profile (LowMemory)" "$rawqueue"
printf '%-52s %14s\n' "  the same storing 100 records per Badger value" "$rawseg"
printf '%-52s %14s\n' "  the same, segments on the queue's profile" "$rawsegq"
printf '%-52s %14s   (goal ≥ 50000)\n' "Townlink end to end (durable, to a subscriber)" "$e2e"
printf '%-52s %14s\n' "  the same with store.profile: default (as raw)" "$e2eserver"
if [ -n "$ratio" ]; then
  printf '%-52s %13s%%   (goal ≥ 60%%; median of %s rounds)\n' "end to end / raw pipeline, same round" "$ratio" "$ROUNDS"
  printf '%-52s %13s%%   (median of %s rounds)\n' "end to end / raw pipeline on the queue's profile" "$ratioq" "$ROUNDS"
  printf '%-52s %13s%%   (median of %s rounds; the raw path with the queue'"'"'s storage layout)\n' "end to end / raw pipeline storing segments" "$ratioseg" "$ROUNDS"
  printf '%-52s %13s%%   (median of %s rounds)\n' "end to end / raw segments on the queue's profile" "$ratiosegq" "$ROUNDS"
  printf '%-52s %13s%%   (median of %s rounds)\n' "end to end, store.profile default / raw pipeline" "$ratios" "$ROUNDS"
  printf '%-52s %13s%%   (median of %s rounds)\n' "end to end, store.profile default / raw segments" "$ratiosegs" "$ROUNDS"
  rounds=$(rounds_of 'BenchmarkEndToEnd-' 'BenchmarkRawPipeline-')
  printf '%-52s %s\n' "  each round (end to end/raw, readings/s)" "$rounds"
  printf '%-52s %s\n' "  load average before each round" "$(grep '^== round' "$out" | sed -E 's/.*load average ([0-9.]+).*/\1/' | paste -sd' ')"
fi
rules0=$(values 'BenchmarkEndToEndRules/rules=0' readings/s | median)
rules20=$(values 'BenchmarkEndToEndRules/rules=20' readings/s | median)
rulesratio=$(ratio_of 'BenchmarkEndToEndRules/rules=20' 'BenchmarkEndToEndRules/rules=0')
rulesrounds=$(rounds_of 'BenchmarkEndToEndRules/rules=20' 'BenchmarkEndToEndRules/rules=0')
printf '%-52s %14s   (%s ns of CPU per reading, %s per rule)\n' "rules: one reading, 20 rules in scope (engine alone)" \
  "$(metric 'BenchmarkRulesObserve' readings/s)" "$(metric 'BenchmarkRulesObserve' cpu_ns/reading)" "$(metric 'BenchmarkRulesObserve' cpu_ns/rule)"
printf '%-52s %14s   (%s µs of CPU per reading)\n' "end to end, 500 meters, no rules" "$rules0" "$(metric 'BenchmarkEndToEndRules/rules=0' cpu_us/reading 1)"
printf '%-52s %14s   (%s µs of CPU per reading)\n' "end to end, 500 meters × 20 rules" "$rules20" "$(metric 'BenchmarkEndToEndRules/rules=20' cpu_us/reading 1)"
if [ -n "$rulesratio" ]; then
  printf '%-52s %13s%%   (goal ≥ 90%%; median of %s rounds of %s readings)\n' "with rules / without, same round" "$rulesratio" "$RULES_ROUNDS" "$RULES_N"
  printf '%-52s %s\n' "  each round (with/without, readings/s)" "$rulesrounds"
fi
echo
printf '%-52s %9s %9s %7s\n' "line owner, 32 meters at 2400 8E1 (wire time)" "tx/s" "limit/s" "%"
for gap in t3.5 20ms 50ms; do
  b="BenchmarkLineOwner32Meters/gap=$gap"
  printf '%-52s %9s %9s %7s\n' "  silence before a request: $gap" \
    "$(metric "$b" tx/s 3)" "$(metric "$b" limit_tx/s 3)" "$(metric "$b" %_of_limit 1)"
done
b=BenchmarkLineOwnerDeadMeter
printf '%-52s %9s %9s %7s\n' "  + 1 dead meter (gap 20ms), live meters" \
  "$(metric $b live_tx/s 3)" "$(metric 'BenchmarkLineOwner32Meters/gap=20ms' limit_tx/s 3)" "$(metric $b live_%_of_limit 1)"
printf '%-52s %s requests, %s ms of line time per back-off window (%s windows, %s %% of the line)\n' "  dead meter cost" \
  "$(metric $b dead_timeouts_per_window 2)" "$(metric $b dead_ms_per_window 0)" "$(metric $b windows 0)" "$(metric $b dead_line_% 1)"

# Memory: the queue holding a 1M-record backlog while it is written (a child
# process per run), with the gateway's default soft heap limit and without;
# then a running gateway at about ten readings a second.
echo
echo "memory (1M records of 200 B written into the queue, then held after a reopen)"
for lim in 56MiB off; do
  GOMEMLIMIT=$lim TOWNLINK_MEM=1 go test -count=1 -run 'TestBacklogMemory$' -v ./uplink/badgerq 2>&1 | tee -a "$out" |
    grep 'lowmem' | sed -E "s/.*lowmem, [0-9]+ entries of 200 B: /  GOMEMLIMIT=$lim: /; s/VmHWM [0-9]+ kB, //; s/, RssFile.*//"
done
echo "  goal: RssAnon ≤ 64 MB while holding a 1M-record backlog and ingesting"
scripts/memory.sh
