package pulse_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/pulse"
	"github.com/townlink/townlink/firmware-sim/pulsesim"
)

func TestValidate(t *testing.T) {
	st := &memStore{}
	for _, c := range []struct {
		cfg  pulse.Config
		want string // "" = valid
	}{
		{pulse.Config{Device: "wm", Input: pulse.Counter, Store: st, PerPulse: drivers.Dec(1, -2), Quantity: "flow_m3", Start: drivers.Dec(5, 0)}, ""},
		{pulse.Config{Device: "door", Input: pulse.Door}, ""},
		{pulse.Config{Device: "loop", Input: pulse.Traffic, Store: st, Interval: 5 * time.Minute}, ""},
		{pulse.Config{Input: pulse.Door}, "no device id"},
		{pulse.Config{Device: "x", Input: 9}, "input 9"},
		{pulse.Config{Device: "wm", Input: pulse.Counter}, "needs a counter store"},
		{pulse.Config{Device: "wm", Input: pulse.Traffic}, "needs a counter store"},
		{pulse.Config{Device: "wm", Input: pulse.Counter, Store: st, PerPulse: drivers.Dec(1, -2)}, "go together"},
		{pulse.Config{Device: "wm", Input: pulse.Counter, Store: st, Quantity: "flow_m3"}, "go together"},
		{pulse.Config{Device: "wm", Input: pulse.Counter, Store: st, Start: drivers.Dec(1, 0)}, "start needs"},
		{pulse.Config{Device: "wm", Input: pulse.Counter, Store: st, PerPulse: drivers.Dec(0, 0), Quantity: "q"}, "greater than 0"},
		{pulse.Config{Device: "wm", Input: pulse.Counter, Store: st, PerPulse: drivers.Float(0.01), Quantity: "q"}, "not a decimal"},
		{pulse.Config{Device: "wm", Input: pulse.Counter, Store: st, PerPulse: drivers.Dec(1, 0), Quantity: "count"}, "not a point name"},
		{pulse.Config{Device: "wm", Input: pulse.Counter, Store: st, PerPulse: drivers.Dec(1, 0), Quantity: "Flow m3"}, "not a point name"},
		{pulse.Config{Device: "d", Input: pulse.Door, Quantity: "q"}, "for counters"},
		{pulse.Config{Device: "d", Input: pulse.Door, Interval: -time.Second}, "negative"},
		{pulse.Config{Device: "d", Input: pulse.Door, Interval: 1500 * time.Microsecond}, "whole milliseconds"},
	} {
		err := c.cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.cfg, err)
		case c.want != "" && (err == nil || !errors.Is(err, drivers.ErrConfig) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: error %v, want ErrConfig with %q", c.cfg, err, c.want)
		}
	}
	if _, err := pulse.New(pulse.Config{Device: "d", Input: pulse.Door}, nil); !errors.Is(err, drivers.ErrConfig) {
		t.Errorf("New without a pin: %v", err)
	}
	d, err := pulse.New(pulse.Config{Device: "wm", Input: pulse.Counter, Store: st}, nil)
	if err == nil {
		t.Fatalf("New with nil pin = %v", d)
	}
	for _, s := range []string{"counter", "door", "flood", "contact", "traffic"} {
		in, err := pulse.ParseInput(s)
		if err != nil || in.String() != s {
			t.Errorf("ParseInput(%q) = %v, %v", s, in, err)
		}
	}
	if _, err := pulse.ParseInput("valve"); !errors.Is(err, drivers.ErrConfig) {
		t.Errorf("ParseInput(valve) = %v", err)
	}
}

func TestDefaults(t *testing.T) {
	r := newRig(t, "DI1", gpio.Low)
	d, err := pulse.New(pulse.Config{Device: "wm", Input: pulse.Counter, Store: &memStore{}}, r.in)
	if err != nil {
		t.Fatal(err)
	}
	if c := d.Config(); c.Debounce != pulse.DefaultDebounce || c.Interval != pulse.DefaultInterval || c.Logger == nil {
		t.Fatalf("defaults: %+v", c)
	}
	d, _ = pulse.New(pulse.Config{Device: "door", Input: pulse.Door, Debounce: -1}, r.in)
	if c := d.Config(); c.Debounce != 0 || c.Interval != 0 {
		t.Fatalf("door defaults: %+v", c)
	}
}

func TestRunRefusesUnreadableCount(t *testing.T) {
	dir := t.TempDir()
	store := pulse.FileStore(dir)
	if err := os.WriteFile(store.Path("wm-9"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, "DI1", gpio.Low)
	d, err := pulse.New(pulse.Config{Device: "wm-9", Input: pulse.Counter, Store: store}, r.in)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = d.Run(ctx, func(drivers.Reading) error { t.Error("emitted"); return nil })
	if !errors.Is(err, pulse.ErrStore) || !strings.Contains(err.Error(), "wm-9") {
		t.Fatalf("Run with a corrupt count = %v; want ErrStore naming the device (never a restart from zero)", err)
	}
}

// A line error in the middle of a train: the Input requests the line again
// and no pulse is lost (the virtual line keeps its events queued).
func TestCounterSurvivesLineError(t *testing.T) {
	train := pulsesim.Train{Start: t0.Add(time.Millisecond), Period: 10 * time.Millisecond, Pulses: 1000, Bounce: time.Millisecond, Bounces: 2, Seed: 3}
	r := newRig(t, "DI1", gpio.Low)
	c := pulse.Config{Device: "wm-3", Input: pulse.Counter, Debounce: 2 * time.Millisecond, Interval: time.Second, Store: &memStore{}}
	got := r.run(t, c, train.Edges(), t0.Add(11*time.Second), func(rd drivers.Reading) error {
		if rd.Time.Equal(t0.Add(3*time.Second)) || rd.Time.Equal(t0.Add(7*time.Second)) {
			r.sim.Break(errors.New("gpiochip0 removed"))
		}
		return nil
	})
	if n := intv(t, got[len(got)-1], "count"); n != 1000 {
		t.Fatalf("count %d after two line errors, want 1000", n)
	}
	if r.in.LineErrors() != 2 || r.sim.Opens() != 3 {
		t.Fatalf("%d line errors, %d requests; want 2 and 3", r.in.LineErrors(), r.sim.Opens())
	}
}
