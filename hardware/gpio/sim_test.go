package gpio

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }

func TestSimVirtualDeliversInOrderAndHonoursDeadlines(t *testing.T) {
	ctx := context.Background()
	s := NewSim("DI1", SimConfig{Virtual: true, Start: t0})
	if err := s.Push(ctx, Edge{gpio.High, at(1)}, Edge{gpio.Low, at(3)}, Edge{gpio.High, at(10)}); err != nil {
		t.Fatal(err)
	}
	l, err := s.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e, err := l.WaitEdge(ctx, time.Time{})
	if err != nil || e != (Edge{gpio.High, at(1)}) {
		t.Fatalf("first edge %v, %v", e, err)
	}
	// The next edge (3 ms) is after the deadline (2 ms): a timeout at 2 ms.
	e, err = l.WaitEdge(ctx, at(2))
	if !errors.Is(err, os.ErrDeadlineExceeded) || !e.Time.Equal(at(2)) || e.Level != gpio.High {
		t.Fatalf("deadline: %v, %v", e, err)
	}
	if !l.Now().Equal(at(2)) {
		t.Fatalf("clock %v after the deadline, want %v", l.Now(), at(2))
	}
	// An edge exactly at the deadline is delivered.
	e, err = l.WaitEdge(ctx, at(3))
	if err != nil || e != (Edge{gpio.Low, at(3)}) {
		t.Fatalf("edge at deadline: %v, %v", e, err)
	}
	if lvl, _ := l.Read(); lvl != gpio.Low {
		t.Fatalf("level %v after falling edge", lvl)
	}
	e, _ = l.WaitEdge(ctx, time.Time{})
	if e != (Edge{gpio.High, at(10)}) {
		t.Fatalf("third edge %v", e)
	}
	// Queue empty, not ended: a deadline waits for a push (it cannot know
	// the future). Push from another goroutine.
	go func() { _ = s.Push(ctx, Edge{gpio.Low, at(50)}) }()
	e, err = l.WaitEdge(ctx, at(20))
	if !errors.Is(err, os.ErrDeadlineExceeded) || !e.Time.Equal(at(20)) {
		t.Fatalf("deadline before a later push: %v, %v", e, err)
	}
	s.End()
	e, err = l.WaitEdge(ctx, at(100))
	if err != nil || e != (Edge{gpio.Low, at(50)}) {
		t.Fatalf("pushed edge %v, %v", e, err)
	}
	// Ended and empty: deadlines come at once.
	e, err = l.WaitEdge(ctx, at(5000))
	if !errors.Is(err, os.ErrDeadlineExceeded) || !e.Time.Equal(at(5000)) {
		t.Fatalf("after End: %v, %v", e, err)
	}
}

func TestSimRejectsBadEdges(t *testing.T) {
	ctx := context.Background()
	s := NewSim("DI1", SimConfig{Virtual: true, Start: t0})
	if err := s.Push(ctx, Edge{gpio.Low, at(1)}); !errors.Is(err, ErrSim) {
		t.Fatalf("edge to the same level: %v", err)
	}
	if err := s.Push(ctx, Edge{gpio.High, at(-1)}); !errors.Is(err, ErrSim) {
		t.Fatalf("edge before the clock: %v", err)
	}
	if err := s.Push(ctx, Edge{gpio.High, at(5)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Push(ctx, Edge{gpio.Low, at(4)}); !errors.Is(err, ErrSim) {
		t.Fatalf("edge back in time: %v", err)
	}
	s.End()
	if err := s.Push(ctx, Edge{gpio.Low, at(6)}); !errors.Is(err, ErrSim) {
		t.Fatalf("push after End: %v", err)
	}
}

func TestSimOneRequestAtATimeAndBreak(t *testing.T) {
	ctx := context.Background()
	s := NewSim("DI2", SimConfig{Virtual: true, Start: t0})
	l, err := s.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx); !errors.Is(err, ErrLine) {
		t.Fatalf("second request: %v", err)
	}
	boom := errors.New("chip removed")
	done := make(chan error, 1)
	go func() {
		_, err := l.WaitEdge(ctx, time.Time{})
		done <- err
	}()
	s.Break(boom)
	if err := <-done; !errors.Is(err, ErrLine) || !errors.Is(err, boom) {
		t.Fatalf("waiting reader after Break: %v", err)
	}
	if _, err := l.Read(); !errors.Is(err, ErrLine) {
		t.Fatalf("read after Break: %v", err)
	}
	l.Close()
	l2, err := s.Open(ctx)
	if err != nil {
		t.Fatalf("request after Break and Close: %v", err)
	}
	l2.Close()
	if _, err := l2.Read(); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
}

func TestSimPushWaitsForCapacity(t *testing.T) {
	ctx := context.Background()
	s := NewSim("DI3", SimConfig{Virtual: true, Start: t0, Capacity: 2})
	pushed := make(chan error, 1)
	go func() {
		pushed <- s.Push(ctx, Edge{gpio.High, at(1)}, Edge{gpio.Low, at(2)}, Edge{gpio.High, at(3)}, Edge{gpio.Low, at(4)})
	}()
	l, _ := s.Open(ctx)
	defer l.Close()
	for i, want := range []Edge{{gpio.High, at(1)}, {gpio.Low, at(2)}, {gpio.High, at(3)}, {gpio.Low, at(4)}} {
		e, err := l.WaitEdge(ctx, time.Time{})
		if err != nil || e != want {
			t.Fatalf("edge %d: %v, %v; want %v", i, e, err, want)
		}
	}
	if err := <-pushed; err != nil {
		t.Fatal(err)
	}
	if n := s.Pending(); n != 0 {
		t.Fatalf("pending %d", n)
	}
}

func TestSimWallClockDeliversWhenDue(t *testing.T) {
	ctx := context.Background()
	s := NewSim("DI4", SimConfig{})
	l, _ := s.Open(ctx)
	defer l.Close()
	start := time.Now()
	due := start.Add(30 * time.Millisecond)
	if err := s.Push(ctx, Edge{gpio.High, due}); err != nil {
		t.Fatal(err)
	}
	if lvl, _ := l.Read(); lvl != gpio.Low {
		t.Fatal("level changed before the edge's time")
	}
	e, err := l.WaitEdge(ctx, start.Add(10*time.Second))
	if err != nil || e != (Edge{gpio.High, due}) {
		t.Fatalf("edge %v, %v", e, err)
	}
	if time.Now().Before(due) {
		t.Fatal("edge delivered before its time")
	}
	_, err = l.WaitEdge(ctx, time.Now().Add(5*time.Millisecond))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("wall deadline: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(5 * time.Millisecond); cancel() }()
	if _, err := l.WaitEdge(cctx, time.Time{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}
}

func TestSimWallClockMissesEdgesWhileNotRequested(t *testing.T) {
	ctx := context.Background()
	s := NewSim("DI5", SimConfig{})
	past := time.Now().Add(-time.Second)
	if err := s.Push(ctx, Edge{gpio.High, past}, Edge{gpio.Low, past.Add(time.Millisecond)}, Edge{gpio.High, past.Add(2 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	l, _ := s.Open(ctx)
	defer l.Close()
	if lvl, _ := l.Read(); lvl != gpio.High {
		t.Fatalf("level %v, want the level after the missed edges", lvl)
	}
	if n := s.Pending(); n != 0 {
		t.Fatalf("%d missed edges still queued", n)
	}
}

func FuzzParseLineSpec(f *testing.F) {
	for _, s := range []string{"gpiochip0:17", "/dev/gpiochip12:3", "GPIO17", "gpiochip0", "/dev/gpiochip0", "gpiochipX:1", "gpiochip0:", "gpiochip0:99999999", "DI1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, ok, err := ParseLineSpec(s)
		if err != nil && !ok {
			t.Fatalf("%q: error %v without ok", s, err)
		}
		if !ok || err != nil {
			return
		}
		if spec.Offset < 0 || spec.Offset > maxOffset {
			t.Fatalf("%q: offset %d", s, spec.Offset)
		}
		again, ok2, err2 := ParseLineSpec(spec.String())
		if !ok2 || err2 != nil || again != spec {
			t.Fatalf("%q → %v does not round-trip: %v %v %v", s, spec, again, ok2, err2)
		}
	})
}

func TestParseLineSpec(t *testing.T) {
	for _, c := range []struct {
		in     string
		want   LineSpec
		ok     bool
		hasErr bool
	}{
		{"gpiochip0:17", LineSpec{"gpiochip0", 17}, true, false},
		{"/dev/gpiochip2:5", LineSpec{"gpiochip2", 5}, true, false},
		{"GPIO17", LineSpec{}, false, false},
		{"gpiochip0", LineSpec{}, false, false},
		{"/dev/gpiochip0", LineSpec{}, true, true},
		{"gpiochip0:x", LineSpec{}, true, true},
		{"gpiochipA:1", LineSpec{}, true, true},
		{"gpiochip0:70000", LineSpec{}, true, true},
	} {
		got, ok, err := ParseLineSpec(c.in)
		if got != c.want || ok != c.ok || (err != nil) != c.hasErr {
			t.Errorf("ParseLineSpec(%q) = %v, %v, %v", c.in, got, ok, err)
		}
		if err != nil && !errors.Is(err, ErrNoLine) {
			t.Errorf("%q: error %v is not ErrNoLine", c.in, err)
		}
	}
}
