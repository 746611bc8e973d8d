package gateway_test

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/townlink/townlink/firmware-sim/cjt188sim"
	"github.com/townlink/townlink/firmware-sim/dlt645sim"
	"github.com/townlink/townlink/firmware-sim/modbussim"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
	"github.com/townlink/townlink/uplink/wire"
)

// alarmRecs returns the distinct (by seq) alarm records of a rule with
// the given event.
func (p *platform) alarmRecs(rule, event string) []wire.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := map[uint64]bool{}
	var out []wire.Record
	for _, r := range p.recs[wire.StreamAlarms] {
		ru, _ := r.Vals["rule"].AsText()
		ev, _ := r.Vals["event"].AsText()
		if ru == rule && ev == event && !seen[r.Seq] {
			seen[r.Seq] = true
			out = append(out, r)
		}
	}
	return out
}

func (p *platform) activeAlarms() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status == nil {
		return nil
	}
	return p.status.Alarms
}

// appendFile appends text to the file at path (writeConfig puts devices
// last, so a rules: section can follow them).
func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// hhmm is a time of day in the gateway's default time zone (Asia/Shanghai).
func hhmm(t *testing.T, at time.Time) string {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return at.In(loc).Format("15:04")
}

// Early warning end to end, through real PTYs, the firmware simulators, a
// real mosquitto and a gateway process killed with -9 while each alarm is
// active: a night leak (a water meter's total rising inside the rule's
// window), a slow creep past a limit with ±2 % noise, a lost phase, and a
// line-wide outage (one alarm for the line, not one per meter). Each
// raises exactly one alarm and clears it exactly once, sharing its id.
//
// The night is the rule's window: it is written around the current time
// of day (a second leak rule whose window lies hours ahead never fires).
func TestRulesScenarios(t *testing.T) {
	broker := mosquittotest.Start(t)
	plat := newPlatform(t, broker.URL)

	mode := hardware.Mode{Baud: 9600}
	e1 := dlt645sim.NewMeter("202611300001", dlt645sim.V2007)
	e2 := dlt645sim.NewMeter("202611300002", dlt645sim.V2007)
	w1 := cjt188sim.NewMeter("20261130000101", cjt188sim.ColdWater)
	if err := w1.SetValue("flow_m3", "1024.50"); err != nil {
		t.Fatal(err)
	}
	pathA := serveShared(t, dlt645sim.NewLine(mode, e1, e2), cjt188sim.NewLine(mode, w1))
	outlet := modbussim.NewUnit(1)
	outlet.SetHolding(0, 800) // 80.0 mg/L
	pathB := serve(t, modbussim.NewBus(mode, outlet))

	now := time.Now()
	dir := t.TempDir()
	path := writeConfig(t, dir, broker.URL, `
- {name: RS485-A, port: "`+pathA+`", baud: 9600, parity: none}
- {name: RS485-B, port: "`+pathB+`", baud: 9600, parity: none}`, `
- {id: e1, kind: power, driver: dlt645, line: RS485-A, address: "202611300001", interval: 1s, timeout: 300ms, read: [voltage_a_v, voltage_b_v, voltage_c_v]}
- {id: e2, kind: power, driver: dlt645, line: RS485-A, address: "202611300002", interval: 1s, timeout: 300ms, read: [voltage_a_v, voltage_b_v, voltage_c_v]}
- {id: w1, kind: water, driver: cjt188, line: RS485-A, address: "20261130000101", interval: 1s, timeout: 300ms}
- {id: outlet, kind: enterprise, driver: modbus, line: RS485-B, unit: 1, interval: 500ms, timeout: 300ms, points: [{name: cod_mg_l, table: holding, address: 0, type: uint16, scale: 0.1}]}`)
	appendFile(t, path, fmt.Sprintf(`rules:
  - {id: night-leak, kind: window, severity: 2, message: "{device}: night flow {value} m³/h above {limit}", scope: {kind: water}, point: flow_m3, counter: true, per: 1h, over: 5s, above: 10, from: %q, to: %q, hold: 2s, clear_hold: 3s}
  - {id: later-leak, kind: window, severity: 2, message: "{device} leaks", scope: {kind: water}, point: flow_m3, counter: true, per: 1h, over: 5s, above: 10, from: %q, to: %q}
  - {id: cod-limit, kind: threshold, severity: 1, message: "{device}: COD {value} mg/L above {limit}", scope: {device: outlet}, point: cod_mg_l, above: 100, hysteresis: 5, hold: 2s, clear_hold: 2s}
  - {id: phase-loss, kind: threshold, severity: 2, message: "{device}: {point} {value} V", scope: {kind: power}, points: [voltage_a_v, voltage_b_v, voltage_c_v], below: 150, hysteresis: 20, hold: 3s, clear_hold: 2s}
  - {id: line-outage, kind: group, severity: 1, message: "outage on {scope}", scope: {line: RS485-A, kind: power}, points: [voltage_a_v, voltage_b_v, voltage_c_v], below: 50, intervals: 3, hold: 2s, clear_hold: 2s, inhibits: [phase-loss, meter-silent]}
  - {id: meter-silent, kind: stale, severity: 3, message: "{device} silent", scope: {kind: power}, intervals: 5}`,
		hhmm(t, now.Add(-time.Hour)), hhmm(t, now.Add(2*time.Hour)), hhmm(t, now.Add(4*time.Hour)), hhmm(t, now.Add(6*time.Hour)))+"\n")
	child := startChild(t, path)

	plat.waitFor("telemetry from every device", 30*time.Second, func() bool {
		for _, d := range []string{"e1", "e2", "w1", "outlet"} {
			if _, ok := plat.latest(wire.StreamTelemetry, d); !ok {
				return false
			}
		}
		return true
	})
	raisedOnce := func(rules ...string) {
		t.Helper()
		plat.waitFor(fmt.Sprintf("%v raised", rules), 60*time.Second, func() bool {
			for _, r := range rules {
				if len(plat.alarmRecs(r, "raised")) == 0 {
					return false
				}
			}
			return true
		})
	}
	clearedOnce := func(rules ...string) {
		t.Helper()
		plat.waitFor(fmt.Sprintf("%v cleared", rules), 60*time.Second, func() bool {
			for _, r := range rules {
				if len(plat.alarmRecs(r, "cleared")) == 0 {
					return false
				}
			}
			return true
		})
	}
	// kill -9 while the alarms are active, start again, and let it run
	// well past every hold time on fresh readings.
	restart := func(c *exec.Cmd) *exec.Cmd {
		t.Helper()
		time.Sleep(500 * time.Millisecond)
		kill9(t, c)
		killed := time.Now()
		c = startChild(t, path)
		plat.waitFor("fresh telemetry after the restart", 30*time.Second, func() bool {
			for _, d := range []string{"e1", "e2", "w1", "outlet"} {
				if r, ok := plat.latest(wire.StreamTelemetry, d); !ok || r.TS < killed.Add(6*time.Second).UnixMilli() {
					return false
				}
			}
			return true
		})
		return c
	}

	// Phase 1: leak, creep, lost phase.
	w1.Leak(36_000_000) // 36 m³/h
	outlet.Animate(modbussim.Creep{Register: 0, From: 80, To: 120, Over: 8 * time.Second, Noise: 0.02, Scale: 0.1, Seed: 1}.Animation())
	if err := e1.LosePhase('b'); err != nil {
		t.Fatal(err)
	}
	raisedOnce("night-leak", "cod-limit", "phase-loss")
	child = restart(child)
	plat.waitFor("the three alarms active in the retained status", 20*time.Second, func() bool { return len(plat.activeAlarms()) == 3 })
	w1.Leak(0)
	outlet.Animate(modbussim.Creep{Register: 0, From: 120, To: 80, Over: 8 * time.Second, Noise: 0.02, Scale: 0.1, Seed: 2}.Animation())
	if err := e1.RestorePhase('b'); err != nil {
		t.Fatal(err)
	}
	clearedOnce("night-leak", "cod-limit", "phase-loss")

	// Phase 2: the whole line goes dark.
	e1.PowerCut()
	e2.PowerCut()
	raisedOnce("line-outage")
	child = restart(child)
	e1.PowerRestore()
	e2.PowerRestore()
	clearedOnce("line-outage")
	plat.waitFor("no active alarm in the status", 20*time.Second, func() bool { return len(plat.activeAlarms()) == 0 })
	time.Sleep(3 * time.Second) // anything late would show now

	for _, c := range []struct {
		rule, dev string
		n         int
	}{
		{"night-leak", "w1", 1}, {"cod-limit", "outlet", 1}, {"phase-loss", "e1", 1}, {"line-outage", "gw-test-01", 1},
		{"later-leak", "", 0}, {"meter-silent", "", 0},
	} {
		raised, cleared := plat.alarmRecs(c.rule, "raised"), plat.alarmRecs(c.rule, "cleared")
		if len(raised) != c.n || len(cleared) != c.n {
			t.Errorf("%s: %d raised and %d cleared, want %d of each", c.rule, len(raised), len(cleared), c.n)
			continue
		}
		if c.n == 0 {
			continue
		}
		r, cl := raised[0], cleared[0]
		rid, _ := r.Vals["alarm_id"].AsText()
		cid, _ := cl.Vals["alarm_id"].AsText()
		if rid == "" || rid != cid || r.Dev != c.dev || cl.Seq <= r.Seq {
			t.Errorf("%s: raised %s on %s (seq %d), cleared %s (seq %d)", c.rule, rid, r.Dev, r.Seq, cid, cl.Seq)
		}
		t.Logf("%s: raised %v, cleared %v", c.rule, r.Vals["message"], cl.Vals["value"])
	}
	if s, ok := plat.report().Stream("gw-test-01", wire.StreamAlarms); !ok || len(s.Missing) != 0 {
		t.Errorf("alarms stream has holes: %+v", s)
	}
	_ = child
}

// The county unreachable: an alarm is raised and cleared in the township
// all the same, and when the broker comes back the two alarm records go
// out ahead of the telemetry backlog (paced at drain_rate; alarms never
// are).
func TestAlarmsWhileOfflineGoFirst(t *testing.T) {
	broker := mosquittotest.Start(t)
	broker.Stop()
	unit := modbussim.NewUnit(1)
	n := uint16(0)
	unit.Animate(func(time.Time, *modbussim.Unit) { n++; unit.SetHolding(0, n) })
	unit.SetHolding(0, 0, 500) // count, COD 50.0 mg/L
	ptyPath := serve(t, modbussim.NewBus(hardware.Mode{Baud: 9600}, unit))
	dir := t.TempDir()
	path := writeConfig(t, dir, broker.URL, `
- {name: RS485-1, port: "`+ptyPath+`", baud: 9600}`, `
- {id: outlet, kind: enterprise, driver: modbus, line: RS485-1, unit: 1, interval: 100ms, timeout: 50ms, points: [{name: n, table: holding, address: 0, type: uint16}, {name: cod_mg_l, table: holding, address: 1, type: uint16, scale: 0.1}]}`)
	withUplink(t, path, "  drain_rate: 20\n")
	appendFile(t, path, `rules:
  - {id: cod-limit, kind: threshold, severity: 1, message: "{device}: COD {value}", scope: {device: outlet}, point: cod_mg_l, above: 100, hysteresis: 5}
`)
	runGateway(t, path)
	time.Sleep(3 * time.Second)
	unit.SetHolding(1, 1500) // 150.0 mg/L
	time.Sleep(2 * time.Second)
	unit.SetHolding(1, 500)
	time.Sleep(2 * time.Second) // ~70 telemetry records wait, at 20/s once the broker is back

	broker.Restart(t)
	plat := newPlatform(t, broker.URL)
	plat.waitFor("the alarm raised and cleared", 60*time.Second, func() bool {
		return len(plat.alarmRecs("cod-limit", "cleared")) > 0
	})
	telemetry := len(plat.records(wire.StreamTelemetry, "outlet"))
	raised, cleared := plat.alarmRecs("cod-limit", "raised"), plat.alarmRecs("cod-limit", "cleared")
	if len(raised) != 1 || len(cleared) != 1 {
		t.Fatalf("%d raised, %d cleared", len(raised), len(cleared))
	}
	if since, _ := raised[0].Vals["since"].AsInt(); since > cleared[0].TS || raised[0].TS > cleared[0].TS {
		t.Errorf("raised at %d (since %d), cleared at %d", raised[0].TS, since, cleared[0].TS)
	}
	if telemetry >= 60 {
		t.Errorf("%d telemetry records arrived before the alarms: the backlog went first", telemetry)
	}
	t.Logf("alarms arrived with %d telemetry records of the backlog delivered", telemetry)
}
