package supervise_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/bus"
	"github.com/townlink/townlink/gateway/supervise"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serial"
	"github.com/townlink/townlink/hardware/serialsim"
)

// panicky is a driver with a bug: its first poll panics.
type panicky struct{ polls *atomic.Int32 }

func (p panicky) Poll(_ context.Context, dst []drivers.Reading) ([]drivers.Reading, error) {
	if p.polls.Add(1) == 1 {
		panic("driver bug: index out of range")
	}
	return append(dst, drivers.Reading{Device: "m1", Class: drivers.Telemetry, Values: map[string]drivers.Value{"x": drivers.Int(1)}}), nil
}

// A line owner that stops — here a driver's panic takes its goroutine
// down — is restarted by the supervisor on its real port and reported.
func TestAStoppedLineIsRestartedAndReported(t *testing.T) {
	pty, err := serialsim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer pty.Close()
	mode := hardware.Mode{Baud: 9600, DataBits: 8, Parity: hardware.ParityNone, StopBits: 1}
	var polls atomic.Int32
	var emitted atomic.Int32
	l, err := bus.New(bus.Config{
		Name: "RS485-1", Mode: mode,
		Open: func() (bus.Port, error) { return serial.Open(pty.Path(), mode) },
		Devices: []bus.Device{{ID: "m1", Interval: 10 * time.Millisecond,
			New: func(hardware.Port) (drivers.Poller, error) { return panicky{&polls}, nil }}},
		Emit: func(context.Context, []drivers.Reading) error { emitted.Add(1); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := supervise.New(nil, supervise.Options{MinBackoff: time.Millisecond})
	s.Go(ctx, "line RS485-1", l.Run)
	deadline := time.Now().Add(20 * time.Second)
	for emitted.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the line did not poll again after the panic (polls %d, emitted %d, parts %+v)", polls.Load(), emitted.Load(), s.Parts())
		}
		time.Sleep(5 * time.Millisecond)
	}
	st := s.Parts()["line RS485-1"]
	if st.Restarts != 1 || !st.Running || st.LastErr == "" {
		t.Errorf("status %+v, want one restart reported with its reason", st)
	}
	cancel()
	s.Wait()
}
