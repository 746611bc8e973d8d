package pulse_test

import (
	"context"
	"errors"
	"iter"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/pulse"
	"github.com/townlink/townlink/firmware-sim/pulsesim"
	"github.com/townlink/townlink/hardware/gpio"
	"github.com/townlink/townlink/hardware/gpiosim"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// rig is a device on a virtual simulated line fed by firmware-sim.
type rig struct {
	sim *gpiosim.Sim
	in  *gpio.Input
}

func newRig(t *testing.T, name string, idle gpio.Level) *rig {
	sim := gpiosim.New(name, gpiosim.Config{Virtual: true, Start: t0, Level: idle})
	in := gpio.NewInput(name, sim.Open, gpio.InputConfig{Clock: sim.Now, Backoff: time.Millisecond})
	t.Cleanup(func() { in.Close() })
	return &rig{sim: sim, in: in}
}

// run plays edges into the line and runs the device until a reading at or
// after until (or a failure), returning every reading emitted. onEmit, if
// set, may fail an emit.
func (r *rig) run(t *testing.T, c pulse.Config, edges iter.Seq[gpio.Edge], until time.Time, onEmit func(drivers.Reading) error) []drivers.Reading {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dev, err := pulse.New(c, r.in)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := pulsesim.Play(ctx, r.sim, edges); err != nil && ctx.Err() == nil {
			t.Errorf("play: %v", err)
		}
		r.sim.End()
	}()
	defer wg.Wait()
	var got []drivers.Reading
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	err = dev.Run(runCtx, func(rd drivers.Reading) error {
		if onEmit != nil {
			if err := onEmit(rd); err != nil {
				return err
			}
		}
		got = append(got, rd)
		if !rd.Time.Before(until) {
			stop()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("test timed out")
	}
	return got
}

func intv(t *testing.T, rd drivers.Reading, name string) int64 {
	t.Helper()
	n, ok := rd.Values[name].AsInt()
	if !ok {
		t.Fatalf("%s: %s is %v, not an Int", rd.Time, name, rd.Values[name])
	}
	return n
}

// memStore is a CounterStore in memory that can fail and records saves.
type memStore struct {
	mu    sync.Mutex
	n     map[string]uint64
	saves int
	fail  error
}

func (m *memStore) Load(dev string) (uint64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.n[dev]
	return n, ok, nil
}

func (m *memStore) Save(dev string, n uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f, ok := m.fail.(errFailN); ok {
		if f <= 1 {
			m.fail = nil
		} else {
			m.fail = f - 1
		}
		return f
	}
	if m.fail != nil {
		return m.fail
	}
	if m.n == nil {
		m.n = map[string]uint64{}
	}
	m.n[dev] = n
	m.saves++
	return nil
}

func (m *memStore) get(dev string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n[dev]
}

// 200 Hz with 2 ms contact bounce (3 bounces = 6 extra edges after every
// clean edge) for 60 s of simulated time: exactly 12000 pulses. Debounce
// must exceed the 2 ms bounce (a bounce edge can come 2 ms after its clean
// edge) and must not exceed the 2.5 ms half period (the next clean edge
// comes 2.5 ms after the previous one): 2.25 ms sits in the middle.
func TestCounter200HzWith2msBounce(t *testing.T) {
	train := pulsesim.Train{Start: t0.Add(time.Millisecond), Period: pulsesim.Period(200), Pulses: 12000,
		Bounce: 2 * time.Millisecond, Bounces: 3, Seed: 2026}
	if err := train.Validate(); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, "DI1", gpio.Low)
	store := &memStore{}
	c := pulse.Config{Device: "wm-1", Input: pulse.Counter, Debounce: 2250 * time.Microsecond,
		PerPulse: drivers.Dec(1, -2), Quantity: "flow_m3", Start: drivers.Dec(12345, -1),
		Interval: time.Second, Store: store}
	start := time.Now()
	got := r.run(t, c, train.Edges(), t0.Add(61*time.Second), nil)
	t.Logf("60 s of 200 Hz with bounce (%d edges) in %v", 12000*2*7, time.Since(start))
	if len(got) != 61 {
		t.Fatalf("%d readings, want 61 (one a second)", len(got))
	}
	for i, rd := range got {
		want := int64(200 * (i + 1))
		if i == 60 {
			want = 12000
		}
		if rd.Class != drivers.Telemetry || !rd.Time.Equal(t0.Add(time.Duration(i+1)*time.Second)) {
			t.Fatalf("reading %d: %v at %v", i, rd.Class, rd.Time)
		}
		if n := intv(t, rd, "count"); n != want {
			t.Fatalf("after %d s: count %d, want %d (lost or double-counted pulses)", i+1, n, want)
		}
		// flow_m3 = 1234.5 + count × 0.01, exactly.
		wantQ, _ := drivers.Scale(want, drivers.Dec(1, -2), drivers.Dec(12345, -1))
		if q := rd.Values["flow_m3"]; !q.Equal(wantQ) || q.Kind() != drivers.KindDecimal {
			t.Fatalf("after %d s: flow_m3 %v, want %v", i+1, q, wantQ)
		}
	}
	if got[60].Values["flow_m3"].String() != "1354.50" {
		t.Fatalf("final flow_m3 %s, want 1354.50", got[60].Values["flow_m3"])
	}
	if n := store.get("wm-1"); n != 12000 {
		t.Fatalf("stored count %d", n)
	}
}

// The same train with a debounce shorter than the bounce double-counts:
// the test above is not passing by accident.
func TestCounterDebounceShorterThanBounceMiscounts(t *testing.T) {
	train := pulsesim.Train{Start: t0.Add(time.Millisecond), Period: pulsesim.Period(200), Pulses: 2000,
		Bounce: 2 * time.Millisecond, Bounces: 3, Seed: 2026}
	r := newRig(t, "DI1", gpio.Low)
	c := pulse.Config{Device: "wm-1", Input: pulse.Counter, Debounce: time.Millisecond, Interval: 20 * time.Second, Store: &memStore{}}
	got := r.run(t, c, train.Edges(), t0.Add(20*time.Second), nil)
	if n := intv(t, got[len(got)-1], "count"); n <= 2000 {
		t.Fatalf("count %d with 1 ms debounce on 2 ms bounce; expected more than 2000", n)
	}
}

func TestTrafficVehiclesPerInterval(t *testing.T) {
	// A vehicle every 3 s (loop occupied 0.5 s), 100 vehicles; 60 s
	// intervals hold 20 each. The store already holds 1000.
	train := pulsesim.Train{Start: t0.Add(time.Second), Period: 3 * time.Second, High: 500 * time.Millisecond, Pulses: 100,
		Bounce: 5 * time.Millisecond, Bounces: 1, Seed: 9}
	store := &memStore{n: map[string]uint64{"loop-1": 1000}}
	r := newRig(t, "DI3", gpio.Low)
	c := pulse.Config{Device: "loop-1", Input: pulse.Traffic, Interval: time.Minute, Store: store}
	got := r.run(t, c, train.Edges(), t0.Add(5*time.Minute), nil)
	if len(got) != 5 {
		t.Fatalf("%d readings", len(got))
	}
	for i, rd := range got {
		if v := intv(t, rd, "vehicles"); v != 20 {
			t.Errorf("interval %d: vehicles %d, want 20", i, v)
		}
		if n := intv(t, rd, "count"); n != int64(1000+20*(i+1)) {
			t.Errorf("interval %d: count %d", i, n)
		}
		if s := rd.Values["interval_s"]; !s.Equal(drivers.Int(60)) && !s.Equal(drivers.Dec(60, 0)) {
			t.Errorf("interval %d: interval_s %v", i, s)
		}
	}
}

func TestTrafficReadingNotKeptStaysOpen(t *testing.T) {
	train := pulsesim.Train{Start: t0.Add(time.Second), Period: 3 * time.Second, High: 500 * time.Millisecond, Pulses: 60}
	r := newRig(t, "DI3", gpio.Low)
	c := pulse.Config{Device: "loop-2", Input: pulse.Traffic, Interval: time.Minute, Store: &memStore{}}
	calls := 0
	got := r.run(t, c, train.Edges(), t0.Add(3*time.Minute), func(drivers.Reading) error {
		calls++
		if calls == 1 {
			return errors.New("queue full")
		}
		return nil
	})
	if len(got) != 2 {
		t.Fatalf("%d readings kept", len(got))
	}
	if v, s := intv(t, got[0], "vehicles"), got[0].Values["interval_s"]; v != 40 || !s.Equal(drivers.Int(120)) && !s.Equal(drivers.Dec(120, 0)) {
		t.Fatalf("reading after a lost one: vehicles %d over %v s, want 40 over 120", v, s)
	}
}

func TestDoorFloodContact(t *testing.T) {
	steps := []pulsesim.Step{{After: 10 * time.Second, Level: gpio.High}, {After: 40 * time.Second, Level: gpio.Low}}
	for _, c := range []struct {
		input       pulse.Input
		class       drivers.Class
		invert      bool
		events      []string
		initial     gpio.Level
		activeLevel gpio.Level
	}{
		{pulse.Door, drivers.Event, false, []string{"door_closed", "door_open", "door_closed"}, gpio.Low, gpio.High},
		// An active-low flood sensor: the line idles high and drops on water.
		{pulse.Flood, drivers.Event, true, []string{"flood_cleared", "flood", "flood_cleared"}, gpio.High, gpio.Low},
		{pulse.Contact, drivers.Event, false, nil, gpio.Low, gpio.High},
	} {
		t.Run(c.input.String(), func(t *testing.T) {
			st := slices.Clone(steps)
			st[0].Level, st[1].Level = c.activeLevel, !c.activeLevel
			tg := pulsesim.Toggles{Start: t0, Initial: c.initial, Steps: st, Bounce: 10 * time.Millisecond, Bounces: 3, Seed: 5}
			r := newRig(t, "DI2", c.initial)
			cfg := pulse.Config{Device: "d-" + c.input.String(), Input: c.input, Invert: c.invert}
			got := r.run(t, cfg, tg.Edges(), t0.Add(40*time.Second), nil)
			if len(got) != 3 {
				t.Fatalf("%d readings: %v", len(got), got)
			}
			for i, want := range []struct {
				at    time.Time
				state bool
			}{{t0, false}, {t0.Add(10 * time.Second), true}, {t0.Add(40 * time.Second), false}} {
				rd := got[i]
				if st, _ := rd.Values["state"].AsBool(); rd.Class != c.class || st != want.state || !rd.Time.Equal(want.at) {
					t.Errorf("reading %d: %v state %v at %v; want %v %v at %v", i, rd.Class, rd.Values["state"], rd.Time, c.class, want.state, want.at)
				}
				ev, hasEv := rd.Values["event"].AsText()
				if c.events == nil && hasEv || c.events != nil && ev != c.events[i] {
					t.Errorf("reading %d: event %q, want %v", i, ev, c.events)
				}
			}
		})
	}
}

func TestCounterSavesBeforeEveryReading(t *testing.T) {
	train := pulsesim.Train{Start: t0.Add(time.Millisecond), Period: 100 * time.Millisecond, Pulses: 300}
	store := &memStore{}
	r := newRig(t, "DI1", gpio.Low)
	c := pulse.Config{Device: "em-1", Input: pulse.Counter, PerPulse: drivers.Dec(1, -3), Quantity: "energy_kwh",
		Interval: time.Second, Store: store}
	got := r.run(t, c, train.Edges(), t0.Add(40*time.Second), func(rd drivers.Reading) error {
		n := intv(t, rd, "count")
		if s := store.get("em-1"); uint64(n) > s {
			t.Errorf("reading with count %d emitted while the store holds %d", n, s)
		}
		if rd.Time.Equal(t0.Add(4 * time.Second)) {
			store.mu.Lock()
			store.fail = errFailN(3) // the saves for 5, 6 and 7 s fail
			store.mu.Unlock()
		}
		return nil
	})
	var times []int
	for _, rd := range got {
		sec := int(rd.Time.Sub(t0) / time.Second)
		times = append(times, sec)
		pulses := int64(10 * min(sec, 30)) // 300 pulses: the train ends at 30 s
		if n := intv(t, rd, "count"); n != pulses {
			t.Errorf("at %d s: count %d, want %d", sec, n, pulses)
		}
		if q, want := rd.Values["energy_kwh"], drivers.Dec(pulses, -3); !q.Equal(want) {
			t.Errorf("at %d s: energy_kwh %v, want %v", sec, q, want)
		}
	}
	want := []int{1, 2, 3, 4}
	for s := 8; s <= 40; s++ {
		want = append(want, s)
	}
	if !slices.Equal(times, want) {
		t.Fatalf("readings at %v s; want %v (none while the store fails)", times, want)
	}
}

// errFailN is a store failure that heals after n saves.
type errFailN int

func (e errFailN) Error() string { return "disk full" }
