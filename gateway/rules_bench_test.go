package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/pipeline"
	"github.com/townlink/townlink/gateway/rules"
	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/badgerq"
)

// benchRules are 20 rules with every power meter in scope: thresholds,
// rates (gauge and counter), windows, silences, expressions and a group.
// The benchmark's readings cross none of them: the cost measured is the
// evaluation, not the alarms.
const benchRules = `
  - {id: v-low, kind: threshold, severity: 2, message: m, scope: {kind: power}, point: voltage_a_v, below: 150, hysteresis: 10, hold: 30s}
  - {id: v-high, kind: threshold, severity: 2, message: m, scope: {kind: power}, point: voltage_a_v, above: 260, hysteresis: 10, hold: 30s}
  - {id: i-high, kind: threshold, severity: 3, message: m, scope: {kind: power}, point: current_a_a, above: 100}
  - {id: i-rev, kind: threshold, severity: 3, message: m, scope: {kind: power}, point: current_a_a, below: -100}
  - {id: p-high, kind: threshold, severity: 3, message: m, scope: {kind: power}, point: power_kw, above: 500, hold: 1m}
  - {id: p-neg, kind: threshold, severity: 4, message: m, scope: {kind: power}, point: power_kw, below: -500}
  - {id: e-rate, kind: rate, severity: 3, message: m, scope: {kind: power}, point: energy_kwh, counter: true, per: 1h, over: 1m, above: 1000000}
  - {id: e-rate2, kind: rate, severity: 4, message: m, scope: {kind: power}, point: energy_kwh, counter: true, per: 1h, max_rate: 10000000, above: 5000000}
  - {id: v-rate, kind: rate, severity: 3, message: m, scope: {kind: power}, point: voltage_a_v, per: 1m, above: 1000}
  - {id: p-rate, kind: rate, severity: 4, message: m, scope: {kind: power}, point: power_kw, per: 1m, below: -1000}
  - {id: night-load, kind: window, severity: 3, message: m, scope: {kind: power}, point: power_kw, above: 1000, from: "02:00", to: "04:00"}
  - {id: night-e, kind: window, severity: 3, message: m, scope: {kind: power}, point: energy_kwh, counter: true, above: 1000000, from: "23:00", to: "05:00"}
  - {id: day-v, kind: window, severity: 4, message: m, scope: {kind: power}, point: voltage_a_v, below: 100, from: "08:00", to: "18:00"}
  - {id: silent, kind: stale, severity: 3, message: m, scope: {kind: power}, intervals: 5}
  - {id: silent-v, kind: stale, severity: 4, message: m, scope: {kind: power}, point: voltage_a_v, after: 10m}
  - {id: silent-long, kind: stale, severity: 2, message: m, scope: {kind: power}, after: 1h}
  - {id: x-jump, kind: expr, severity: 3, message: m, scope: {kind: power}, expr: "power_kw - prev.power_kw > 1000 && dt < 60"}
  - {id: x-pf, kind: expr, severity: 4, message: m, scope: {kind: power}, expr: "current_a_a > 1000 || voltage_a_v > 1000"}
  - {id: v-multi, kind: threshold, severity: 2, message: m, scope: {kind: power}, points: [voltage_a_v, power_kw], below: -5000}
  - {id: outage, kind: group, severity: 1, message: m, scope: {kind: power}, points: [voltage_a_v], below: 50, intervals: 3, inhibits: [v-low, silent]}
`

// benchConfig is a config of n power meters on four lines with the rules.
func benchConfig(b *testing.B, n int, withRules bool) *config.Config {
	b.Helper()
	var sb strings.Builder
	sb.WriteString("gateway: {id: gw-bench-01, county: \"320583\", township: \"320583104\"}\nuplink: {brokers: [\"tcp://127.0.0.1:1883\"]}\nlines:\n")
	for l := range 4 {
		fmt.Fprintf(&sb, "  - {name: L%d, port: /dev/ttyUSB%d}\n", l, l)
	}
	sb.WriteString("devices:\n")
	for i := range n {
		fmt.Fprintf(&sb, "  - {id: meter-%03d, driver: dlt645, line: L%d, address: \"%012d\", interval: 10s, read: [energy_kwh, voltage_a_v, current_a_a, power_kw]}\n", i, i%4, i+1)
	}
	if withRules {
		sb.WriteString("rules:" + benchRules)
	}
	cfg, err := config.Parse("bench.yaml", []byte(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	return cfg
}

func benchReading(id string, i int) drivers.Reading {
	return drivers.Reading{Device: id, Time: time.Now(), Values: map[string]drivers.Value{
		"energy_kwh": drivers.Dec(int64(12345678+i), -2), "voltage_a_v": drivers.Dec(2297, -1),
		"current_a_a": drivers.Dec(-1234, -3), "power_kw": drivers.Dec(12345, -4)}}
}

// benchEngine builds an engine keeping its state in db (the gateway's
// store, as in the gateway; nil: a store of its own).
func benchEngine(b *testing.B, db *badgerq.DB, cfg *config.Config, emit rules.Emitter) *rules.Engine {
	b.Helper()
	if db == nil {
		var err error
		if db, err = badgerq.Open(badgerq.Options{Dir: b.TempDir()}); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
	}
	kv, err := db.KV("alarm-state")
	if err != nil {
		b.Fatal(err)
	}
	e, err := rules.New(rules.Options{Gateway: cfg.Gateway.ID, Rules: cfg.Rules, Devices: cfg.Devices,
		Location: cfg.Gateway.Location, Emit: emit, Store: kv})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// cpuTime is the process's user+system CPU time: on a shared machine the
// CPU a reading costs is steadier than the wall time it takes.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var benchDevices = 500

// BenchmarkRulesObserve is the rules' cost on the ingest path: one
// reading of one of 500 meters, each with the 20 rules in scope.
func BenchmarkRulesObserve(b *testing.B) {
	cfg := benchConfig(b, benchDevices, true)
	var emitted atomic.Int64
	e := benchEngine(b, nil, cfg, func(_ context.Context, rs []drivers.Reading) error { emitted.Add(int64(len(rs))); return nil })
	ids := make([]string, len(cfg.Devices))
	for i := range cfg.Devices {
		ids[i] = cfg.Devices[i].ID
	}
	ctx := context.Background()
	rs := make([][]drivers.Reading, len(ids))
	for i, id := range ids {
		rs[i] = []drivers.Reading{benchReading(id, i)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime(b)
	for i := range b.N {
		r := rs[i%len(rs)]
		r[0].Time = r[0].Time.Add(10 * time.Second) // a new reading: rates move
		e.Observe(ctx, r)
	}
	elapsed, cpu := time.Since(start), cpuTime(b)-cpu
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "readings/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu_ns/reading")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/20, "cpu_ns/rule")
	if emitted.Load() != 0 {
		b.Fatalf("%d alarms from readings that cross no rule", emitted.Load())
	}
}

// BenchmarkEndToEndRules is BenchmarkEndToEnd's durable path (pipeline →
// Badger → forwarder → paho QoS 1 → mosquitto → subscriber) from 500
// meters, without rules and with 20 rules in scope of every meter, in the
// same run: the ratio is what the rules cost end to end (goal ≥ 90 %).
func BenchmarkEndToEndRules(b *testing.B) {
	for _, withRules := range []bool{false, true} {
		name := "rules=0"
		if withRules {
			name = "rules=20"
		}
		b.Run(name, func(b *testing.B) { endToEndRules(b, withRules) })
	}
}

func endToEndRules(b *testing.B, withRules bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, q, got := benchUplink(b, badgerq.Profile{})

	cfg := benchConfig(b, 500, withRules)
	devs := map[string]pipeline.Device{}
	for _, d := range cfg.Devices {
		devs[d.ID] = pipeline.Device{Kind: string(d.Kind), Grid: d.Grid}
	}
	pipe := &pipeline.Pipeline{Gateway: "gw-bench-01", Devices: devs,
		Queues: map[drivers.Class]uplink.Queue{drivers.Telemetry: q}, ClockSynced: func() bool { return true }}
	if withRules {
		e := benchEngine(b, db, cfg, pipe.Emit)
		pipe.Observe = e.Feed
		rctx, rcancel := context.WithCancel(ctx)
		rdone := make(chan struct{})
		go func() { e.Run(rctx); close(rdone) }()
		defer func() { rcancel(); <-rdone }()
	}

	b.ResetTimer()
	start, cpu := time.Now(), cpuTime(b)
	var wg sync.WaitGroup
	per := b.N/len(cfg.Devices) + 1
	total := int64(per * len(cfg.Devices))
	for _, d := range cfg.Devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				if err := pipe.Emit(ctx, []drivers.Reading{benchReading(d.ID, i)}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Minute)
	for got.Load() < total {
		if time.Now().After(deadline) {
			b.Fatalf("subscriber got %d of %d records", got.Load(), total)
		}
		time.Sleep(time.Millisecond)
	}
	elapsed, cpu := time.Since(start), cpuTime(b)-cpu
	b.StopTimer()
	b.ReportMetric(float64(total)/elapsed.Seconds(), "readings/s")
	// The process's CPU per reading (gateway side and the in-process
	// subscriber; mosquitto is another process).
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(total)/1000, "cpu_us/reading")
}
