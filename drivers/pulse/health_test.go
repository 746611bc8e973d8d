package pulse_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/pulse"
	"github.com/townlink/townlink/hardware/gpio"
	"github.com/townlink/townlink/hardware/gpiosim"
)

// waitHealth polls d.Health until ok says so or ctx ends.
func waitHealth(ctx context.Context, t *testing.T, d *pulse.Device, what string, ok func(pulse.Health) bool) pulse.Health {
	t.Helper()
	for {
		h := d.Health()
		if ok(h) {
			return h
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: health stayed %+v", what, h)
		case <-time.After(time.Millisecond):
		}
	}
}

// A pin whose line errors makes the device report the error while the
// line is away, and clears it when the line is back.
func TestHealthReportsAPinThatErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sim := gpiosim.New("DI3", gpiosim.Config{Virtual: true, Start: t0, Level: gpio.Low})
	in := gpio.NewInput("DI3", sim.Open, gpio.InputConfig{Clock: sim.Now, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	defer in.Close()
	dev, err := pulse.New(pulse.Config{Device: "door-1", Input: pulse.Door}, in)
	if err != nil {
		t.Fatal(err)
	}
	if h := dev.Health(); h.Running || h.Pin != nil {
		t.Fatalf("health before Run = %+v, want not running and no error", h)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- dev.Run(runCtx, func(drivers.Reading) error { return nil }) }()

	h := waitHealth(ctx, t, dev, "start", func(h pulse.Health) bool { return h.Running && h.Readings == 1 })
	if h.Pin != nil || h.Errors != 0 {
		t.Fatalf("healthy door = %+v", h)
	}
	sim.SetOpenError(errors.New("ENODEV"))
	sim.Break(errors.New("chip removed"))
	h = waitHealth(ctx, t, dev, "pin away", func(h pulse.Health) bool { return h.Pin != nil })
	if !errors.Is(h.Pin, gpio.ErrLine) || !h.Running {
		t.Fatalf("health while the chip is away = %+v, want a running device with ErrLine", h)
	}
	sim.SetOpenError(nil)
	waitHealth(ctx, t, dev, "pin back", func(h pulse.Health) bool { return h.Pin == nil })
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if h := dev.Health(); h.Running {
		t.Fatalf("health after Run = %+v, want not running", h)
	}
}

// A pin that fails outright (closed under Run) stops Run, and the device
// keeps the reason.
func TestHealthKeepsWhyRunStopped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sim := gpiosim.New("DI4", gpiosim.Config{Virtual: true, Start: t0, Level: gpio.Low})
	in := gpio.NewInput("DI4", sim.Open, gpio.InputConfig{Clock: sim.Now, Backoff: time.Millisecond})
	dev, err := pulse.New(pulse.Config{Device: "flood-1", Input: pulse.Flood}, in)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- dev.Run(ctx, func(drivers.Reading) error { return nil }) }()
	waitHealth(ctx, t, dev, "start", func(h pulse.Health) bool { return h.Running })
	in.Close()
	sim.Break(errors.New("chip removed"))
	if err := <-done; !errors.Is(err, gpio.ErrClosed) {
		t.Fatalf("Run = %v, want ErrClosed", err)
	}
	if h := dev.Health(); h.Running || !errors.Is(h.Pin, gpio.ErrClosed) {
		t.Fatalf("health after the pin closed = %+v", h)
	}
}
