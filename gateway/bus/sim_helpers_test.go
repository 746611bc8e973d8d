package bus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/dlt645"
	"github.com/townlink/townlink/firmware-sim/dlt645sim"
	"github.com/townlink/townlink/gateway/bus"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serial"
	"github.com/townlink/townlink/hardware/serialsim"
)

// line2400 is DL/T 645-2007's default framing: 2400 8E1.
var line2400 = hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}

// serveMeters runs simulated DL/T 645 meters (the independent firmware) on
// a fresh PTY until the test ends, and returns the line opener the owner
// uses: the PTY's slave through the real serial backend.
func serveMeters(tb testing.TB, sim *dlt645sim.Line) func() (bus.Port, error) {
	tb.Helper()
	pty, err := serialsim.OpenPTY()
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Serve(ctx, pty) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("simulator: %v", err)
		}
		pty.Close()
	})
	path, mode := pty.Path(), sim.Mode
	return func() (bus.Port, error) { return serial.Open(path, mode) }
}

// meterAddr is the address of the i-th simulated meter.
func meterAddr(i int) string { return fmt.Sprintf("2026%08d", i) }

// meterDevice is a DL/T 645-2007 meter reading energy_kwh only, built the
// way gateway/devices.go builds one, with the given silence before its
// requests (dlt645.Config.Gap, which the meter declares as its FrameGap;
// 0 is the driver's default).
func meterDevice(id, addr string, interval, timeout time.Duration, retries int, gap time.Duration) bus.Device {
	cfg := dlt645.Config{Device: id, Address: addr, Version: dlt645.V2007, Points: []string{"energy_kwh"},
		Timeout: timeout, Retries: retries, Gap: gap, Class: drivers.Telemetry}
	return bus.Device{ID: id, Interval: interval,
		New: func(p hardware.Port) (drivers.Poller, error) { return dlt645.New(cfg, p) }}
}

// newLine builds a line owner from cfg.
func newLine(tb testing.TB, cfg bus.Config) *bus.Line {
	tb.Helper()
	l, err := bus.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// runLine runs l until the test ends.
func runLine(tb testing.TB, l *bus.Line) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			tb.Error("line owner did not stop within 20 s")
		}
	})
}

// stamps records when each device's readings were handed over, and their
// values.
type stamps struct {
	mu   sync.Mutex
	at   map[string][]time.Time
	last map[string]string // energy_kwh as a decimal string
	all  []time.Time
	wake chan struct{}
}

func newStamps() *stamps {
	return &stamps{at: map[string][]time.Time{}, last: map[string]string{}, wake: make(chan struct{}, 1)}
}

func (s *stamps) emit(_ context.Context, rs []drivers.Reading) error {
	now := time.Now()
	s.mu.Lock()
	for _, r := range rs {
		s.at[r.Device] = append(s.at[r.Device], now)
		s.all = append(s.all, now)
		if v, ok := r.Values["energy_kwh"]; ok {
			s.last[r.Device] = v.String()
		}
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

func (s *stamps) value(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[id]
}

func (s *stamps) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.all)
}

// nth returns when the n-th reading (0-based) of the whole line arrived.
func (s *stamps) nth(n int) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.all[n]
}

// waitTotal waits until the line has emitted n readings.
func (s *stamps) waitTotal(tb testing.TB, n int, limit time.Duration) {
	tb.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for s.total() < n {
		select {
		case <-s.wake:
		case <-deadline.C:
			tb.Fatalf("only %d of %d readings within %v", s.total(), n, limit)
		}
	}
}

func waitUntil(tb testing.TB, what string, limit time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// txTime is the wire-time limit of one energy_kwh read: request (with its
// FE preamble) + turnaround + reply (with the meter's preamble) + the
// silence a line needs between frames. Computed from the frames, not
// measured.
func txTime(mode hardware.Mode, turnaround time.Duration, replyPreamble int) (per time.Duration, req, rep int) {
	addr, err := dlt645.ParseAddress(meterAddr(1))
	if err != nil {
		panic(err)
	}
	di := []byte{0x00, 0x00, 0x01, 0x00} // 0001 0000, sent low byte first
	req = len(dlt645.Encode(dlt645.Frame{Preamble: dlt645.DefaultPreamble, Addr: addr, Control: dlt645.FuncRead, Data: di}))
	rep = len(dlt645.Encode(dlt645.Frame{Preamble: replyPreamble, Addr: addr, Control: dlt645.FuncRead | dlt645.CtrlReply,
		Data: append(di, 0x78, 0x56, 0x34, 0x12)}))
	return mode.WireTime(req) + turnaround + mode.WireTime(rep) + bus.InterFrameGap(mode), req, rep
}
