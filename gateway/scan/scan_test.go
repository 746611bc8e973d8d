package scan_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/firmware-sim/cjt188sim"
	"github.com/townlink/townlink/firmware-sim/dlt645sim"
	"github.com/townlink/townlink/firmware-sim/modbussim"
	"github.com/townlink/townlink/gateway/bus"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/scan"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serial"
)

func summary(fs []scan.Found) []string {
	var s []string
	for _, f := range fs {
		s = append(s, fmt.Sprintf("%s %s %s %s", f.Edition, f.Address(), f.Mode, f.Device.ID))
	}
	slices.Sort(s)
	return s
}

// One meter of each edition and a Modbus unit on one port, at real line
// timing: Run (the job a line owner runs) finds each, reads it once, and
// reports progress that ends with nothing left.
func TestRunFindsEachEdition(t *testing.T) {
	m07 := dlt645sim.NewMeter("202612070001", dlt645sim.V2007)
	m07.Set("energy_kwh", "42.00")
	m97 := dlt645sim.NewMeter("199700000042", dlt645sim.V1997)
	m97.Set("energy_kwh", "45678.90")
	w := cjt188sim.NewMeter("20261207000101", cjt188sim.ColdWater)
	if err := w.SetValue("flow_m3", "12.34"); err != nil {
		t.Fatal(err)
	}
	u := modbussim.NewUnit(5)
	u.SetHolding(0, 777)
	// Every simulator emulates the wire time at 2400 8E1: the probes'
	// windows must allow for it.
	dl, cl, mb := dlt645sim.NewLine(mode2400, m07, m97), cjt188sim.NewLine(mode2400, w), modbussim.NewBus(mode2400, u)
	dl.WireTime, cl.WireTime, mb.WireTime = true, true, true
	path := serveShared(t, dl, cl, mb)
	p, err := serial.Open(path, mode2400)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	units, _ := scan.ParseUnits("1-10")
	var last scan.Progress
	var steps []string
	found, err := scan.Run(context.Background(), p, mode2400, scan.Options{ReplyDelay: 200 * time.Millisecond, Units: units, Line: "RS485-2"},
		func(pr scan.Progress) {
			if pr.Done < last.Done || pr.Done > pr.Total || pr.Found < last.Found {
				t.Errorf("progress went %+v after %+v", pr, last)
			}
			if len(steps) == 0 || steps[len(steps)-1] != pr.Step {
				steps = append(steps, pr.Step)
			}
			last = pr
		})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"CJ/T 188-2004 20261207000101 2400 8E1 water-20261207000101",
		"DL/T 645-1997 199700000042 2400 8E1 meter-199700000042",
		"DL/T 645-2007 202612070001 2400 8E1 meter-202612070001",
		"Modbus RTU unit 5 2400 8E1 rs485-2-unit-5",
	}
	if got := summary(found); !slices.Equal(got, want) {
		t.Errorf("found %v, want %v", got, want)
	}
	values := map[string]string{"meter-202612070001": "energy_kwh 42.00", "meter-199700000042": "energy_kwh 45678.90",
		"water-20261207000101": "flow_m3 12.34", "rs485-2-unit-5": "holding_0 777"}
	for _, f := range found {
		pt, v, _ := strings.Cut(values[f.Device.ID], " ")
		if got := f.Reading.Values[pt]; got.String() != v || f.ReadErr != "" {
			t.Errorf("%s: first reading %s = %s (%s), want %s; reading %+v note %q dev %+v", f.Device.ID, pt, got, f.ReadErr, v, f.Reading, f.Note, f.Device)
		}
	}
	if last.Left != 0 || last.Done != last.Total || last.Found != 4 {
		t.Errorf("last progress %+v, want all done, 4 found", last)
	}
	for _, s := range []string{"DL/T 645-2007 at 2400 8E1", "DL/T 645-1997 at 2400 8E1", "CJ/T 188-2004 at 2400 8E1", "Modbus RTU at 2400 8E1"} {
		if !slices.Contains(steps, s) {
			t.Errorf("steps %q lack %q", steps, s)
		}
	}
}

// Line with an auto plan opens the port at each setting in turn; a
// DL/T 645-2007 meter found at the first setting is not looked for at the
// others, while 1997 (not found) is tried at all four.
func TestLineStopsLookingForAnEditionOnceFound(t *testing.T) {
	path := serveShared(t, dlt645sim.NewLine(mode2400, dlt645sim.NewMeter("202612070001", dlt645sim.V2007)))
	var opened []hardware.Mode
	open := func(m hardware.Mode) (hardware.Port, error) {
		opened = append(opened, m)
		return serial.Open(path, m)
	}
	plan := scan.AutoPlan([]scan.Protocol{scan.DLT645})
	found, err := scan.Line(context.Background(), open, plan, scan.Options{ReplyDelay: 200 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(found); len(got) != 1 || !strings.HasPrefix(got[0], "DL/T 645-2007 202612070001 2400 8E1") {
		t.Errorf("found %v", got)
	}
	// 1997 is still looked for at every usual setting, 2007 only at the first.
	if len(opened) != 4 {
		t.Errorf("opened at %v, want the 4 DL/T 645 settings", opened)
	}
}

// Cancelling a scan returns what was found so far with ctx's error.
func TestRunStopsOnCancel(t *testing.T) {
	u1, u2 := modbussim.NewUnit(1), modbussim.NewUnit(200)
	u1.SetHolding(0, 1)
	u2.SetHolding(0, 2)
	mode := hardware.Mode{Baud: 9600}
	path := serveShared(t, modbussim.NewBus(mode, u1, u2))
	p, err := serial.Open(path, mode)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	found, err := scan.Run(ctx, p, mode, scan.Options{Protocols: []scan.Protocol{scan.Modbus}, ReplyDelay: 20 * time.Millisecond},
		func(pr scan.Progress) {
			if pr.Done >= 20 {
				cancel()
			}
		})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got := summary(found); len(got) != 1 || !strings.Contains(got[0], "unit 1 ") {
		t.Errorf("found %v, want unit 1 only", got)
	}
}

// A scan through a running line owner on a Leased port: the owner keeps
// polling its configured device between the scan's probes, and the scan
// finds the meter on the same line.
func TestLeasedScanThroughTheLineOwner(t *testing.T) {
	meter := dlt645sim.NewMeter("202612070001", dlt645sim.V2007)
	u := modbussim.NewUnit(9)
	u.SetHolding(0, 99)
	path := serveShared(t, dlt645sim.NewLine(mode2400, meter), modbussim.NewBus(mode2400, u))
	polled := config.Device{ID: "unit-9", Driver: config.DriverModbus, Unit: 9, Timeout: time.Second, Retries: 1,
		Points: []config.Point{{Name: "holding_0", Table: config.TableHolding, Type: config.TypeUint16}}}
	var mu sync.Mutex
	readings := 0
	line := newOwner(t, "RS485-2", mode2400, func() (bus.Port, error) { return serial.Open(path, mode2400) },
		[]bus.Device{{ID: polled.ID, Interval: 50 * time.Millisecond,
			New: func(p hardware.Port) (drivers.Poller, error) { return scan.NewPoller(polled, p, nil) }}},
		func(_ context.Context, rs []drivers.Reading) error {
			mu.Lock()
			readings += len(rs)
			mu.Unlock()
			return nil
		})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- line.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return readings }

	p := scan.Leased(ctx, line.Do, 100*time.Millisecond)
	units, _ := scan.ParseUnits("1-40")
	var during []int
	found, err := scan.Run(ctx, p, mode2400, scan.Options{Protocols: []scan.Protocol{scan.DLT645, scan.Modbus}, Units: units,
		ReplyDelay: 150 * time.Millisecond}, func(scan.Progress) { during = append(during, count()) })
	p.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"DL/T 645-2007 202612070001 2400 8E1 meter-202612070001", "Modbus RTU unit 9 2400 8E1 rs485-1-unit-9"}
	if got := summary(found); !slices.Equal(got, want) {
		t.Errorf("found %v, want %v", got, want)
	}
	if len(during) < 2 || during[len(during)-1] <= during[0] {
		t.Errorf("the owner emitted no reading while the scan ran (readings seen at progress: %v)", during)
	}
	if _, err := p.Write([]byte{0}); !errors.Is(err, scan.ErrLeaseClosed) {
		t.Errorf("write after Close: %v, want ErrLeaseClosed", err)
	}
}
