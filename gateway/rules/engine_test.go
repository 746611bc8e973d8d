package rules

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/config"
)

// memStore is a Store in memory (a fake for this package's tests only;
// the gateway uses a badgerq KV table).
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memStore) Put(k string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = append([]byte(nil), v...)
	return nil
}

func (s *memStore) Delete(ks ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range ks {
		delete(s.m, k)
	}
	return nil
}

func (s *memStore) Scan(fn func(string, []byte) error) error {
	s.mu.Lock()
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn(k, s.m[k]); err != nil {
			return err
		}
	}
	return nil
}

// sink records emitted readings; fail makes Emit fail.
type sink struct {
	mu   sync.Mutex
	rs   []drivers.Reading
	fail bool
}

func (s *sink) emit(_ context.Context, rs []drivers.Reading) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("queue full")
	}
	s.rs = append(s.rs, rs...)
	return nil
}

// events returns "event rule dev" of every alarm-class record.
func (s *sink) events() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.rs {
		if r.Class != drivers.Alarm {
			continue
		}
		ev, _ := r.Values["event"].AsText()
		rule, _ := r.Values["rule"].AsText()
		out = append(out, ev+" "+rule+" "+r.Device)
	}
	return out
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func at(h, m int, loc *time.Location) time.Time {
	return time.Date(2026, 12, 7, h, m, 0, 0, loc)
}

const header = `gateway:
  id: gw-1
  county: "320583"
  township: "320583104"
uplink:
  brokers: ["tcp://127.0.0.1:1883"]
lines:
  - {name: A, port: /dev/ttyUSB0}
  - {name: B, port: /dev/ttyUSB1, baud: 9600, parity: none}
devices:
  - {id: e1, driver: dlt645, line: A, address: "202611300001", interval: 10s, read: [energy_kwh, voltage_a_v, voltage_b_v, voltage_c_v]}
  - {id: e2, driver: dlt645, line: A, address: "202611300002", interval: 10s, read: [energy_kwh, voltage_a_v, voltage_b_v, voltage_c_v]}
  - {id: w1, driver: cjt188, line: A, address: "20261130000101", interval: 10s}
  - id: outlet
    kind: enterprise
    driver: modbus
    line: B
    unit: 1
    interval: 10s
    points:
      - {name: cod_mg_l, table: holding, address: 0, type: uint16, scale: 0.1}
rules:
`

type fixture struct {
	t     *testing.T
	cfg   *config.Config
	clk   *clock
	store *memStore
	out   *sink
	e     *Engine
}

func newFixture(t *testing.T, rules string) *fixture { return newFixtureAt(t, header+rules, 1) }

// newFixtureAt loads config and starts an engine at hour h of 2026-12-07.
func newFixtureAt(t *testing.T, yaml string, h int) *fixture {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, cfg: cfg, clk: &clock{t: at(h, 0, cfg.Gateway.Location)}, store: &memStore{m: map[string][]byte{}}, out: &sink{}}
	f.restart()
	return f
}

// restart builds a new engine on the same store, as after a kill -9.
func (f *fixture) restart() {
	f.t.Helper()
	e, err := New(Options{Gateway: "gw-1", Rules: f.cfg.Rules, Devices: f.cfg.Devices, Location: f.cfg.Gateway.Location,
		Now: f.clk.now, Emit: f.out.emit, Store: f.store})
	if err != nil {
		f.t.Fatal(err)
	}
	f.e = e
}

func (f *fixture) read(dev string, vals map[string]drivers.Value) {
	f.e.Observe(context.Background(), []drivers.Reading{{Device: dev, Time: f.clk.t, Values: vals}})
}

func dec(v float64) drivers.Value { return drivers.Dec(int64(v*100), -2) }

func (f *fixture) want(events ...string) {
	f.t.Helper()
	got := f.out.events()
	if strings.Join(got, "; ") != strings.Join(events, "; ") {
		f.t.Fatalf("alarm records:\n got %q\nwant %q", got, events)
	}
}

// A limit crossed with noise on top: hysteresis and hold keep it from
// flapping; one raise, one clear.
func TestThresholdHysteresisAndHold(t *testing.T) {
	f := newFixture(t, `
  - {id: cod, kind: threshold, severity: 1, message: "{device} COD {value} > {limit}", scope: {device: outlet}, point: cod_mg_l, above: 100, hysteresis: 5, hold: 1m, clear_hold: 2m}
`)
	rng := rand.New(rand.NewPCG(1, 2))
	noisy := func(base float64) drivers.Value { return dec(base * (1 + (rng.Float64()*2-1)*0.02)) }
	// Creep from 80 to 120 over 40 minutes, ±2 % noise, a reading every 10 s.
	for i := 0; i < 240; i++ {
		f.read("outlet", map[string]drivers.Value{"cod_mg_l": noisy(80 + 40*float64(i)/240)})
		f.e.Tick(context.Background())
		f.clk.add(10 * time.Second)
	}
	f.want("raised cod outlet")
	raised := f.out.rs[0]
	if v, _ := raised.Values["value"].AsFloat(); v <= 100 {
		t.Errorf("raised with value %v", v)
	}
	if msg, _ := raised.Values["message"].AsText(); !strings.HasPrefix(msg, "outlet COD 1") || !strings.HasSuffix(msg, "> 100") {
		t.Errorf("message %q", msg)
	}
	// And back down.
	for i := 0; i < 240; i++ {
		f.read("outlet", map[string]drivers.Value{"cod_mg_l": noisy(120 - 40*float64(i)/240)})
		f.e.Tick(context.Background())
		f.clk.add(10 * time.Second)
	}
	f.want("raised cod outlet", "cleared cod outlet")
	a, _ := f.out.rs[0].Values["alarm_id"].AsText()
	b, _ := f.out.rs[1].Values["alarm_id"].AsText()
	if a == "" || a != b {
		t.Errorf("alarm ids %q and %q differ", a, b)
	}
	if len(f.store.m) != 0 {
		t.Errorf("store keeps %d entries after the clear", len(f.store.m))
	}
}

// Noise on a limit never flaps, by hysteresis alone (no hold).
func TestHysteresisAlone(t *testing.T) {
	f := newFixture(t, `
  - {id: cod, kind: threshold, severity: 1, message: "COD", scope: {device: outlet}, point: cod_mg_l, above: 100, hysteresis: 5}
`)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200; i++ {
		f.read("outlet", map[string]drivers.Value{"cod_mg_l": dec(100 * (1 + (rng.Float64()*2-1)*0.02))})
		f.clk.add(10 * time.Second)
	}
	f.read("outlet", map[string]drivers.Value{"cod_mg_l": dec(90)})
	f.want("raised cod outlet", "cleared cod outlet")
}

// A night leak: a water meter's total rising between 02:00 and 04:00
// (rate of a counter, in m³/h); a counter reset and a meter replacement
// raise nothing.
func TestNightLeakCounterRate(t *testing.T) {
	f := newFixture(t, `
  - {id: leak, kind: window, severity: 2, message: "{device} {value} m³/h", scope: {kind: water}, point: flow_m3, counter: true, per: 1h, max_rate: 50, above: 0.5, from: "02:00", to: "04:00", hold: 10m}
`)
	loc := f.cfg.Gateway.Location
	f.clk.t = at(1, 0, loc)
	total := 1000.0
	step := func(perHour float64, until time.Time) {
		for f.clk.t.Before(until) {
			total += perHour / 360
			f.read("w1", map[string]drivers.Value{"flow_m3": dec(total)})
			f.e.Tick(context.Background())
			f.clk.add(10 * time.Second)
		}
	}
	step(2, at(2, 0, loc)) // 2 m³/h before the window: no alarm
	f.want()
	total = 5000 // replacement with a meter at a higher total: a jump above max_rate
	step(0, at(3, 0, loc))
	f.want()
	total = 3               // counter reset (meter replaced with a new one); the leak starts at once
	step(1, at(3, 15, loc)) // the leak: 1 m³/h at night, raised after the 10 minutes' hold
	f.want("raised leak w1")
	step(1, at(3, 30, loc))
	step(0, at(4, 30, loc)) // fixed
	f.want("raised leak w1", "cleared leak w1")
}

// A meter silent for N intervals raises; its next reading clears.
func TestStale(t *testing.T) {
	f := newFixture(t, `
  - {id: silent, kind: stale, severity: 3, message: "{device} silent", scope: {device: w1}, intervals: 3}
`)
	f.read("w1", map[string]drivers.Value{"flow_m3": dec(1)})
	for i := 0; i < 10; i++ {
		f.clk.add(5 * time.Second)
		f.e.Tick(context.Background())
	}
	f.want("raised silent w1")
	f.read("w1", map[string]drivers.Value{"flow_m3": dec(1)})
	f.want("raised silent w1", "cleared silent w1")
}

const outageRules = `
  - {id: phase-loss, kind: threshold, severity: 2, message: "{device} {point} {value} V", scope: {kind: power}, points: [voltage_a_v, voltage_b_v, voltage_c_v], below: 150, hysteresis: 20, hold: 30s}
  - {id: outage, kind: group, severity: 1, message: "outage on {scope}", scope: {line: A, kind: power}, points: [voltage_a_v, voltage_b_v, voltage_c_v], below: 50, intervals: 3, hold: 20s, inhibits: [phase-loss, silent]}
  - {id: silent, kind: stale, severity: 3, message: "{device} silent", scope: {kind: power}, intervals: 5}
`

func volts(a, b, c float64) map[string]drivers.Value {
	return map[string]drivers.Value{"voltage_a_v": dec(a), "voltage_b_v": dec(b), "voltage_c_v": dec(c)}
}

// A phase lost on one meter: one phase-loss alarm for it, no outage.
func TestPhaseLoss(t *testing.T) {
	f := newFixture(t, outageRules)
	run := func(e1, e2 map[string]drivers.Value, d time.Duration) {
		for end := f.clk.t.Add(d); f.clk.t.Before(end); f.clk.add(10 * time.Second) {
			f.read("e1", e1)
			f.read("e2", e2)
			f.e.Tick(context.Background())
		}
	}
	run(volts(220, 221, 219), volts(220, 220, 220), time.Minute)
	run(volts(220, 0, 219), volts(220, 220, 220), 2*time.Minute)
	f.want("raised phase-loss e1")
	if p, _ := f.out.rs[0].Values["point"].AsText(); p != "voltage_b_v" {
		t.Errorf("point %q", p)
	}
	run(volts(220, 160, 219), volts(220, 220, 220), 2*time.Minute) // inside the hysteresis: stays
	f.want("raised phase-loss e1")
	run(volts(220, 221, 219), volts(220, 220, 220), 2*time.Minute)
	f.want("raised phase-loss e1", "cleared phase-loss e1")
}

// Every meter on the line dark, then every meter silent: one alarm for
// the line, not one per meter.
func TestLineOutageIsOneAlarm(t *testing.T) {
	for _, how := range []string{"dark", "silent"} {
		t.Run(how, func(t *testing.T) {
			f := newFixture(t, outageRules)
			for i := 0; i < 6; i++ {
				f.read("e1", volts(220, 220, 220))
				f.read("e2", volts(220, 220, 220))
				f.clk.add(10 * time.Second)
				f.e.Tick(context.Background())
			}
			for i := 0; i < 30; i++ { // 5 minutes out
				if how == "dark" {
					f.read("e1", volts(0, 0, 0))
					f.read("e2", volts(0, 0, 0))
				}
				f.clk.add(10 * time.Second)
				f.e.Tick(context.Background())
			}
			f.want("raised outage gw-1")
			if sc, _ := f.out.rs[0].Values["scope"].AsText(); sc != "kind:power,line:A" {
				t.Errorf("scope %q", sc)
			}
			for i := 0; i < 12; i++ {
				f.read("e1", volts(220, 220, 220))
				f.read("e2", volts(220, 220, 220))
				f.clk.add(10 * time.Second)
				f.e.Tick(context.Background())
			}
			f.want("raised outage gw-1", "cleared outage gw-1")
		})
	}
}

// An expression over points, previous values and time.
func TestExpr(t *testing.T) {
	f := newFixture(t, `
  - {id: jump, kind: expr, severity: 3, message: "{device} jumped", scope: {device: outlet}, expr: "cod_mg_l - prev.cod_mg_l > 20 && dt < 60 && hour == 1"}
`)
	for _, v := range []float64{50, 55, 90, 91, 92} {
		f.read("outlet", map[string]drivers.Value{"cod_mg_l": dec(v)})
		f.clk.add(10 * time.Second)
	}
	f.want("raised jump outlet", "cleared jump outlet")
}

// An expression may name a point only as prev.<point>, or as
// prev["<point>"]: the previous reading's value, 0 before there is one.
func TestExprPrevOnly(t *testing.T) {
	f := newFixture(t, `
  - {id: was-high, kind: expr, severity: 3, message: "{device}", scope: {device: outlet}, expr: "prev.cod_mg_l > 100 && prev[\"cod_mg_l\"] > 100"}
`)
	for _, v := range []float64{50, 150, 60, 70} {
		f.read("outlet", map[string]drivers.Value{"cod_mg_l": dec(v)})
		f.clk.add(10 * time.Second)
	}
	f.want("raised was-high outlet", "cleared was-high outlet")
	if n := len(f.out.rs); n != 2 {
		t.Fatalf("%d records", n)
	}
}

// Expressions compiled to closures raise and clear what the VM does: the
// same random readings through both give the same records.
func TestExprFastAndVMAgree(t *testing.T) {
	const rules = `
  - {id: jump, kind: expr, severity: 3, message: m, scope: {kind: power}, expr: "voltage_a_v - prev.voltage_a_v > 15 && dt < 60"}
  - {id: any, kind: expr, severity: 3, message: m, scope: {kind: power}, expr: "voltage_a_v > 240 || energy_kwh / 2 >= 600", hold: 20s}
  - {id: night, kind: expr, severity: 3, message: m, scope: {device: outlet}, expr: "not (hour >= 2) and cod_mg_l > prev.cod_mg_l * 1.5 or minute == 7"}
`
	fast, slow := newFixture(t, rules), newFixture(t, rules)
	vmOnly := func(f *fixture) {
		for _, r := range f.e.rules {
			r.fast = nil
		}
	}
	for _, r := range fast.e.rules {
		if r.fast == nil {
			t.Fatalf("rule %s runs on the VM: the test would compare the VM with itself", r.cfg.ID)
		}
	}
	vmOnly(slow)
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		dev := []string{"e1", "e2", "outlet"}[rnd.IntN(3)]
		vals := map[string]drivers.Value{"voltage_a_v": dec(float64(200 + rnd.IntN(60))), "energy_kwh": dec(float64(1100 + rnd.IntN(200)))}
		if dev == "outlet" {
			vals = map[string]drivers.Value{"cod_mg_l": dec(float64(rnd.IntN(200)))}
		}
		step := time.Duration(1+rnd.IntN(90)) * time.Second
		for _, f := range []*fixture{fast, slow} {
			f.read(dev, vals)
			f.clk.add(step)
			if i%500 == 499 {
				f.restart()
			}
		}
		if i%500 == 499 {
			vmOnly(slow)
		}
	}
	got, want := fast.out.events(), slow.out.events()
	t.Logf("%d records", len(want))
	if len(want) < 20 {
		t.Fatalf("only %d records: the readings hardly test the rules", len(want))
	}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Fatalf("closures:\n%q\nVM:\n%q", got, want)
	}
}

// An expression that fails when it runs (an integer division by zero) is
// counted every time and logged at most once a minute per rule; the
// reading is not evaluated by that rule, and nothing else stops.
func TestExprFailureCountedAndLoggedOnceAMinute(t *testing.T) {
	f := newFixture(t, `
  - {id: modulo, kind: expr, severity: 3, message: m, scope: {device: outlet}, expr: "hour % minute == 0 && cod_mg_l > 0"}
  - {id: cod, kind: threshold, severity: 1, message: "COD", scope: {device: outlet}, point: cod_mg_l, above: 100}
`)
	var logs strings.Builder
	e, err := New(Options{Gateway: "gw-1", Rules: f.cfg.Rules, Devices: f.cfg.Devices, Location: f.cfg.Gateway.Location,
		Now: f.clk.now, Emit: f.out.emit, Store: f.store, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f.e = e
	for range 6 { // 01:00:00 to 01:00:50, minute 0: five runs fail
		f.read("outlet", map[string]drivers.Value{"cod_mg_l": dec(150)})
		f.clk.add(10 * time.Second)
	}
	if n := e.Stats().ExprErrors; n != 5 {
		t.Errorf("%d failures counted, want 5", n)
	}
	if n := strings.Count(logs.String(), "rule expression failed"); n != 1 {
		t.Errorf("logged %d times within a minute, want once:\n%s", n, logs.String())
	}
	f.clk.t = at(2, 0, f.cfg.Gateway.Location) // a minute later or more, minute 0 again
	f.read("outlet", map[string]drivers.Value{"cod_mg_l": dec(150)})
	var lines []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "rule expression failed") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 || !strings.Contains(lines[0], "failures=1 ") || !strings.Contains(lines[1], "failures=5 ") {
		t.Errorf("after a minute: want a second line, with the 5 failures since the first:\n%s", logs.String())
	}
	f.want("raised cod outlet") // the other rule went on
}

// An expression's hour, minute and device follow the clock and the
// reading (they are written into its environment only when they change).
func TestExprClockAndDevice(t *testing.T) {
	f := newFixture(t, `
  - {id: late, kind: expr, severity: 3, message: "{device} late", scope: {kind: power}, expr: "device == 'e2' && hour == 1 && minute >= 2 && voltage_a_v < 100"}
`)
	low := map[string]drivers.Value{"voltage_a_v": dec(50)}
	for _, dev := range []string{"e1", "e2", "e1", "e2"} { // a first reading, then 01:00: too early
		f.read(dev, low)
	}
	f.clk.add(90 * time.Second) // 01:01:30
	f.read("e2", low)
	f.clk.add(30 * time.Second) // 01:02:00
	f.read("e1", low)
	f.want()
	f.read("e2", low)
	f.want("raised late e2")
	f.clk.add(58 * time.Minute) // 02:00:00
	f.read("e2", low)
	f.want("raised late e2", "cleared late e2")
}

// Restarts keep the lifecycle: an active alarm is not raised again; its
// clear comes once; a record left pending is queued again, same id.
func TestRestartKeepsState(t *testing.T) {
	f := newFixture(t, `
  - {id: cod, kind: threshold, severity: 1, message: "COD", scope: {device: outlet}, point: cod_mg_l, above: 100}
`)
	f.read("outlet", map[string]drivers.Value{"cod_mg_l": dec(150)})
	f.want("raised cod outlet")
	for i := 0; i < 3; i++ {
		f.restart()
		f.clk.add(10 * time.Second)
		f.read("outlet", map[string]drivers.Value{"cod_mg_l": dec(150)})
		f.e.Tick(context.Background())
	}
	f.want("raised cod outlet")
	if n := len(f.e.Active()); n != 1 {
		t.Fatalf("%d active after restarts", n)
	}
	// The queue refuses the clear: it is stored pending, then the process dies.
	f.out.fail = true
	f.read("outlet", map[string]drivers.Value{"cod_mg_l": dec(50)})
	f.out.fail = false
	f.restart()
	f.e.Tick(context.Background())
	f.want("raised cod outlet", "cleared cod outlet")
	f.restart()
	f.e.Tick(context.Background())
	f.want("raised cod outlet", "cleared cod outlet")
	if len(f.store.m) != 0 {
		t.Errorf("store keeps %v", f.store.m)
	}
}

// A rule that keeps firing is rate-limited, and says so once.
func TestRateLimit(t *testing.T) {
	f := newFixture(t, `
  - {id: cod, kind: threshold, severity: 1, message: "COD", scope: {device: outlet}, point: cod_mg_l, above: 100, rate_limit: {raises: 2, per: 1h}}
`)
	for i := 0; i < 6; i++ {
		f.read("outlet", map[string]drivers.Value{"cod_mg_l": dec(150)})
		f.read("outlet", map[string]drivers.Value{"cod_mg_l": dec(50)})
		f.clk.add(time.Minute)
	}
	f.want("raised cod outlet", "cleared cod outlet", "raised cod outlet", "cleared cod outlet", "suppressed cod outlet")
	f.clk.add(time.Hour)
	f.read("outlet", map[string]drivers.Value{"cod_mg_l": dec(150)})
	last := f.out.rs[len(f.out.rs)-1]
	if n, _ := last.Values["suppressed"].AsInt(); n != 4 {
		t.Errorf("next raise reports %d suppressed, want 4", n)
	}
}

// The platform's ack is recorded and kept; it does not clear the alarm.
func TestAck(t *testing.T) {
	f := newFixture(t, `
  - {id: cod, kind: threshold, severity: 1, message: "COD", scope: {device: outlet}, point: cod_mg_l, above: 100}
`)
	f.read("outlet", map[string]drivers.Value{"cod_mg_l": dec(150)})
	id, _ := f.out.rs[0].Values["alarm_id"].AsText()
	if err := f.e.Ack(context.Background(), "nope", "op"); !errors.Is(err, ErrUnknownAlarm) {
		t.Errorf("ack of an unknown id: %v", err)
	}
	if err := f.e.Ack(context.Background(), id, "op"); err != nil {
		t.Fatal(err)
	}
	f.restart()
	act := f.e.Active()
	if len(act) != 1 || !act[0].Acked {
		t.Fatalf("active after ack and restart: %+v", act)
	}
	last := f.out.rs[len(f.out.rs)-1]
	if ev, _ := last.Values["event"].AsText(); last.Class != drivers.Event || ev != EventAck {
		t.Errorf("ack recorded as %+v", last)
	}
}

// Feed hands readings to Run, which evaluates them off the ingest path;
// alarm readings are not fed back.
func TestFeedRun(t *testing.T) {
	f := newFixture(t, `
  - {id: cod, kind: threshold, severity: 1, message: "COD", scope: {device: outlet}, point: cod_mg_l, above: 100}
`)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.e.Run(ctx) }()
	f.e.Feed(ctx, []drivers.Reading{
		{Device: "outlet", Class: drivers.Alarm, Values: map[string]drivers.Value{"cod_mg_l": dec(500)}},
		{Device: "nobody", Values: map[string]drivers.Value{"cod_mg_l": dec(500)}},
	})
	f.e.Feed(ctx, []drivers.Reading{{Device: "outlet", Time: f.clk.t, Values: map[string]drivers.Value{"cod_mg_l": dec(150)}}})
	deadline := time.Now().Add(20 * time.Second)
	for len(f.out.events()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f.want("raised cod outlet")
	if s := f.e.Stats(); s.Observed != 1 || s.Raised != 1 || s.Active[1] != 1 {
		t.Errorf("stats %+v", s)
	}
}

// One Feed of readings of several devices (a line's poll cycle), handed
// to Run: each device's readings are evaluated in their order.
func TestFeedKeepsEachDevicesOrder(t *testing.T) {
	f := newFixture(t, `
  - {id: v-low, kind: threshold, severity: 2, message: "low", scope: {kind: power}, point: voltage_a_v, below: 150}
  - {id: cod, kind: threshold, severity: 1, message: "COD", scope: {device: outlet}, point: cod_mg_l, above: 100}
`)
	var rs []drivers.Reading
	for i, bad := range []bool{false, true, true, false} { // raise and clear on each device (out of order: not so)
		v, cod := 220.0, 50.0
		if bad {
			v, cod = 100, 150
		}
		at := f.clk.t.Add(time.Duration(i) * 10 * time.Second)
		rs = append(rs,
			drivers.Reading{Device: "e1", Time: at, Values: map[string]drivers.Value{"voltage_a_v": dec(v)}},
			drivers.Reading{Device: "outlet", Time: at, Values: map[string]drivers.Value{"cod_mg_l": dec(cod)}},
			drivers.Reading{Device: "e2", Time: at, Values: map[string]drivers.Value{"voltage_a_v": dec(v)}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.e.Run(ctx) }()
	f.e.Feed(ctx, rs)
	deadline := time.Now().Add(20 * time.Second)
	for f.e.Stats().Observed < uint64(len(rs)) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	per := map[string][]string{}
	for _, ev := range f.out.events() {
		w := strings.Fields(ev)
		per[w[2]] = append(per[w[2]], w[0]+" "+w[1])
	}
	for dev, rule := range map[string]string{"e1": "v-low", "e2": "v-low", "outlet": "cod"} {
		want := "raised " + rule + "; cleared " + rule
		if got := strings.Join(per[dev], "; "); got != want {
			t.Errorf("%s: got %q, want %q", dev, got, want)
		}
	}
}

// The pipeline hands the engine's own alarm records back to Feed from
// inside Run. With Feed's buffer full, Feed must not wait for Run then
// (it would wait for itself): a burst of feedLen readings that each
// raise or clear an alarm is evaluated to the end.
func TestFeedFullWhileRunRaises(t *testing.T) {
	f := newFixture(t, `
  - {id: cod, kind: threshold, severity: 1, message: "COD", scope: {device: outlet}, point: cod_mg_l, above: 100, rate_limit: {raises: 100000, per: 1h}}
`)
	cfg := f.cfg
	var e *Engine
	e, err := New(Options{Gateway: "gw-1", Rules: cfg.Rules, Devices: cfg.Devices, Location: cfg.Gateway.Location, Now: f.clk.now, Store: f.store,
		Emit: func(ctx context.Context, rs []drivers.Reading) error {
			if err := f.out.emit(ctx, rs); err != nil {
				return err
			}
			e.Feed(ctx, rs) // as pipeline.Observe does
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	burst := make([]drivers.Reading, 0, 2*feedLen)
	for i := range 2 * feedLen {
		v := 50.0
		if i%2 == 0 {
			v = 150
		}
		burst = append(burst, drivers.Reading{Device: "outlet", Time: f.clk.t, Values: map[string]drivers.Value{"cod_mg_l": dec(v)}})
	}
	fed := make(chan struct{})
	go func() { e.Feed(ctx, burst[:feedLen]); e.Feed(ctx, burst[feedLen:]); close(fed) }()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	deadline := time.Now().Add(60 * time.Second)
	for e.Stats().Observed < uint64(len(burst)) {
		if time.Now().After(deadline) {
			t.Fatalf("stuck: %d of %d readings evaluated", e.Stats().Observed, len(burst))
		}
		time.Sleep(10 * time.Millisecond)
	}
	<-fed
	cancel()
	<-done
	if s := e.Stats(); s.Raised != feedLen || s.Cleared != feedLen {
		t.Errorf("%d raised, %d cleared; want %d each", s.Raised, s.Cleared, feedLen)
	}
}

// A reading skips the tracks its device's busy bits say are idle. Under
// random readings, ticks and restarts, a track whose bit is clear is
// always idle, so skipping it changes nothing.
func TestBusyBitsCoverEveryBusyTrack(t *testing.T) {
	f := newFixture(t, outageRules+`
  - {id: v-high, kind: threshold, severity: 3, message: m, scope: {kind: power}, point: voltage_a_v, above: 240, hysteresis: 5, hold: 20s, clear_hold: 20s}
  - {id: v-rate, kind: rate, severity: 3, message: m, scope: {kind: power}, point: voltage_a_v, per: 1m, above: 30}
  - {id: e-rate, kind: rate, severity: 3, message: m, scope: {kind: power}, point: energy_kwh, counter: true, per: 1h, over: 1m, above: 50}
  - {id: night, kind: window, severity: 3, message: m, scope: {kind: power}, point: voltage_b_v, above: 230, from: "01:00", to: "01:20"}
  - {id: v-silent, kind: stale, severity: 4, message: m, scope: {kind: power}, point: voltage_c_v, after: 40s}
  - {id: jump, kind: expr, severity: 3, message: m, scope: {kind: power}, expr: "voltage_a_v - prev.voltage_a_v > 15 && dt < 60"}
`)
	rng := rand.New(rand.NewPCG(7, 12))
	energy := map[string]float64{"e1": 100, "e2": 100}
	check := func(step int) {
		t.Helper()
		f.e.mu.Lock()
		defer f.e.mu.Unlock()
		for id, d := range f.e.devs {
			for k := range d.tracks {
				if tr := &d.tracks[k]; !d.busy.has(k) && tr.busy() {
					t.Fatalf("step %d: %s rule %s busy (alarm %v, pending %d, holding %v) with its bit clear", step, id, tr.rule.cfg.ID, tr.alarm != nil, tr.pendSince, tr.raiseCond)
				}
			}
		}
	}
	raised := 0
	for step := range 3000 {
		switch n := rng.IntN(20); {
		case n == 0:
			f.restart()
		case n < 4:
			f.e.Tick(context.Background())
		default:
			dev := []string{"e1", "e2"}[rng.IntN(2)]
			energy[dev] += rng.Float64() * 2
			if rng.IntN(30) == 0 {
				energy[dev] = 0 // a meter replaced
			}
			v := volts(200+rng.Float64()*60, 200+rng.Float64()*60, 200+rng.Float64()*60)
			if rng.IntN(10) == 0 {
				v = volts(rng.Float64()*40, rng.Float64()*40, rng.Float64()*40)
			}
			if rng.IntN(5) == 0 {
				delete(v, "voltage_c_v")
			}
			v["energy_kwh"] = dec(energy[dev])
			f.read(dev, v)
		}
		f.clk.add(time.Duration(rng.IntN(15)) * time.Second)
		check(step)
	}
	for _, ev := range f.out.events() {
		if strings.HasPrefix(ev, "raised") {
			raised++
		}
	}
	if raised < 10 {
		t.Fatalf("only %d raises in the run: the sequence does not exercise the lifecycle", raised)
	}
}
