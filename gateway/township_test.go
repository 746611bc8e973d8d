package gateway_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/firmware-sim/cjt188sim"
	"github.com/townlink/townlink/firmware-sim/dlt645sim"
	"github.com/townlink/townlink/firmware-sim/modbussim"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serialsim"
	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
	"github.com/townlink/townlink/uplink/wire"
)

// serveShared runs several protocols' simulators on one PTY through a
// Multidrop, like devices on one RS-485 bus: each hears every byte and
// answers only its own frames. It returns the path the gateway opens.
func serveShared(t *testing.T, srvs ...interface {
	Serve(context.Context, hardware.Port) error
}) string {
	t.Helper()
	pty, err := serialsim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	md := serialsim.NewMultidrop(pty)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, len(srvs)+1)
	for _, s := range srvs {
		p := md.Attach()
		wg.Add(1)
		go func() { defer wg.Done(); errs <- s.Serve(ctx, p) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); errs <- md.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil && !errors.Is(err, serialsim.ErrMultidropStopped) {
				t.Errorf("simulator on %s: %v", pty.Path(), err)
			}
		}
		pty.Close()
	})
	return pty.Path()
}

// The township: eight devices of four protocols on two RS-485 lines, with
// the wire time of every byte emulated at each line's mode, one meter dead
// and one answering 5 % garbage.
//
//	RS485-A 2400 8E1: DL/T 645-2007 meters e1 (ok), e2 (5 % garbage), e3
//	                  (silent); CJ/T 188 water meters w1, w2; Modbus unit 200
//	RS485-B 1200 8E1: DL/T 645-1997 meter p1; Modbus unit 7
//
// Every live device's values arrive exactly at a real mosquitto; each live
// device's records come at its interval (mean over a window of 5-10
// intervals, ±10 %) while the silent meter is down and backed off; the
// retained status says it is down.
func TestTownship(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: the township scenario on PTYs and mosquitto (about 30 s under -race); make test runs it")
	}
	broker := mosquittotest.Start(t)
	plat := newPlatform(t, broker.URL)

	modeA := hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}
	modeB := hardware.Mode{Baud: 1200, Parity: hardware.ParityEven}

	// Line A.
	e1 := dlt645sim.NewMeter("202611300001", dlt645sim.V2007)
	e1.Set("energy_kwh", "123456.78")
	e2 := dlt645sim.NewMeter("202611300002", dlt645sim.V2007)
	e2.Set("energy_kwh", "8812.05")
	e2.SetFault(dlt645sim.Garbage(0.05))
	e3 := dlt645sim.NewMeter("202611300003", dlt645sim.V2007)
	e3.Set("energy_kwh", "301.40")
	e3.SetFault(dlt645sim.Silent)
	powerA := dlt645sim.NewLine(modeA, e1, e2, e3)
	powerA.WireTime = true
	w1 := cjt188sim.NewMeter("20261130000101", cjt188sim.ColdWater)
	if err := w1.SetValue("flow_m3", "1024.50"); err != nil {
		t.Fatal(err)
	}
	w2 := cjt188sim.NewMeter("20261130000102", cjt188sim.ColdWater)
	if err := w2.SetValue("flow_m3", "77.03"); err != nil {
		t.Fatal(err)
	}
	waterA := cjt188sim.NewLine(modeA, w1, w2)
	waterA.WireTime = true
	mbA := modbussim.NewUnit(200)
	if err := mbA.SetUint32(modbussim.HoldingRegisters, 0, 4000000123, modbussim.ABCD); err != nil {
		t.Fatal(err)
	}
	busA := modbussim.NewBus(modeA, mbA)
	busA.WireTime = true
	pathA := serveShared(t, powerA, waterA, busA)

	// Line B.
	p1 := dlt645sim.NewMeter("199700000042", dlt645sim.V1997)
	p1.Set("energy_kwh", "45678.90")
	powerB := dlt645sim.NewLine(modeB, p1)
	powerB.WireTime = true
	mbB := modbussim.NewUnit(7)
	mbB.SetInput(10, int16ToU(-253))
	busB := modbussim.NewBus(modeB, mbB)
	busB.WireTime = true
	pathB := serveShared(t, powerB, busB)

	// Line A carries about 1.4 s of wire time per round (DL/T 645 read
	// 272 ms with its 50 ms gap, CJ/T 188 386 ms with 100 ms, Modbus
	// 110 ms), so meters are read every 2 s and water meters every 4 s:
	// about half the line, leaving room for the dead meter's probes.
	dir := t.TempDir()
	path := writeConfig(t, dir, broker.URL, `
- {name: RS485-A, port: "`+pathA+`", baud: 2400, parity: even}
- {name: RS485-B, port: "`+pathB+`", baud: 1200, parity: even}`, `
- {id: e1, kind: power, driver: dlt645, line: RS485-A, address: "202611300001", interval: 2s, timeout: 500ms, read: [energy_kwh]}
- {id: e2, kind: power, driver: dlt645, line: RS485-A, address: "202611300002", interval: 2s, timeout: 500ms, read: [energy_kwh]}
- {id: e3, kind: power, driver: dlt645, line: RS485-A, address: "202611300003", interval: 2s, timeout: 500ms, read: [energy_kwh]}
- {id: w1, kind: water, driver: cjt188, line: RS485-A, address: "20261130000101", interval: 4s, timeout: 1s}
- {id: w2, kind: water, driver: cjt188, line: RS485-A, address: "20261130000102", interval: 4s, timeout: 1s}
- id: outlet-a
  kind: enterprise
  driver: modbus
  line: RS485-A
  unit: 200
  interval: 2s
  timeout: 500ms
  points: [{name: flow_l, table: holding, address: 0, type: uint32, order: ABCD, scale: 0.001}]
- {id: p1, kind: power, driver: dlt645-1997, line: RS485-B, address: "199700000042", interval: 2s, timeout: 1s, read: [energy_kwh]}
- id: boiler-b
  kind: enterprise
  driver: modbus
  line: RS485-B
  unit: 7
  interval: 2s
  timeout: 600ms
  points: [{name: temp_c, table: input, address: 10, type: int16, scale: 0.1}]`)
	runGateway(t, path)

	// Exact values: decimal strings equal to what the simulators hold.
	want := map[string]map[string]string{
		"e1":       {"energy_kwh": "123456.78"},
		"e2":       {"energy_kwh": "8812.05"},
		"w1":       {"flow_m3": "1024.50"},
		"w2":       {"flow_m3": "77.03"},
		"outlet-a": {"flow_l": "4000000.123"},
		"p1":       {"energy_kwh": "45678.90"},
		"boiler-b": {"temp_c": "-25.3"},
	}
	interval := map[string]time.Duration{"e1": 2 * time.Second, "e2": 2 * time.Second, "w1": 4 * time.Second,
		"w2": 4 * time.Second, "outlet-a": 2 * time.Second, "p1": 2 * time.Second, "boiler-b": 2 * time.Second}
	plat.waitFor("a record from every live device", 30*time.Second, func() bool {
		for dev := range want {
			if _, ok := plat.latest(wire.StreamTelemetry, dev); !ok {
				return false
			}
		}
		return true
	})

	// The silent meter goes down (3 polls: 3 tries, then 1 and 1) and is
	// backed off.
	plat.waitFor("e3 down in the status", 30*time.Second, func() bool { return plat.deviceState("e3") == "down" })
	downAt := time.Now().UnixMilli()

	// Windows of 10 intervals (5 for the water meters), all after e3 went
	// down: 11 (6) records of each device.
	const span = 20 * time.Second
	need := func(dev string) int { return int(span/interval[dev]) + 1 }
	plat.waitFor("a 20 s window of records after e3 went down", 45*time.Second, func() bool {
		for dev := range want {
			if len(plat.since(dev, downAt)) < need(dev) {
				return false
			}
		}
		return true
	})

	for dev, vals := range want {
		recs := plat.since(dev, downAt)
		for _, r := range recs {
			for k, v := range vals {
				if got := r.Vals[k]; got.Kind() != wire.KindDecimal || got.String() != v {
					t.Errorf("%s seq %d: %s = %s (kind %v), want exact decimal %s", dev, r.Seq, k, got, got.Kind(), v)
				}
			}
		}
		recs = recs[:need(dev)]
		n := len(recs) - 1
		mean := time.Duration(recs[n].TS-recs[0].TS) * time.Millisecond / time.Duration(n)
		var diffs []time.Duration
		for i := 1; i <= n; i++ {
			diffs = append(diffs, time.Duration(recs[i].TS-recs[i-1].TS)*time.Millisecond)
		}
		slices.Sort(diffs)
		iv := interval[dev]
		t.Logf("%-8s interval %v: mean %v, median %v, shortest %v, longest %v over %d intervals",
			dev, iv, mean, diffs[n/2], diffs[0], diffs[n-1], n)
		if mean < iv*9/10 || mean > iv*11/10 {
			t.Errorf("%s: mean interval %v over %d intervals while e3 was backed off; want %v ± 10 %%", dev, mean, n, iv)
		}
	}
	if _, ok := plat.latest(wire.StreamTelemetry, "e3"); ok {
		t.Error("the silent meter produced a record")
	}
	if s := plat.deviceState("e3"); s != "down" {
		t.Errorf("e3 state %q after the window, want down (backed off, not recovered)", s)
	}
	for dev := range want {
		if s := plat.deviceState(dev); s == "down" || s == "" {
			t.Errorf("live device %s state %q", dev, s)
		}
	}

	// The status is retained: a platform that subscribes now learns at
	// once that e3 is down.
	late := newPlatform(t, broker.URL)
	late.waitFor("the retained status", 10*time.Second, func() bool { return late.deviceState("e3") == "down" })

	if bad := plat.malformed(); len(bad) > 0 {
		t.Errorf("malformed messages: %v", bad)
	}
	if rep := plat.settledReport(20 * time.Second); !rep.OK() {
		t.Errorf("audit: %s", rep)
	}
}

// since returns a device's telemetry records with ts ≥ from (ms), by ts.
func (p *platform) since(dev string, from int64) []wire.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []wire.Record
	for _, r := range p.recs[wire.StreamTelemetry] {
		if r.Dev == dev && r.TS >= from {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b wire.Record) int { return int(a.TS - b.TS) })
	return out
}
