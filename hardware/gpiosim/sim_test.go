package gpiosim

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/townlink/townlink/hardware/gpio"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }

func TestSimVirtualDeliversInOrderAndHonoursDeadlines(t *testing.T) {
	ctx := context.Background()
	s := New("DI1", Config{Virtual: true, Start: t0})
	if err := s.Push(ctx, gpio.Edge{Level: gpio.High, Time: at(1)}, gpio.Edge{Level: gpio.Low, Time: at(3)}, gpio.Edge{Level: gpio.High, Time: at(10)}); err != nil {
		t.Fatal(err)
	}
	l, err := s.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e, err := l.WaitEdge(ctx, time.Time{})
	if err != nil || e != (gpio.Edge{Level: gpio.High, Time: at(1)}) {
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
	if err != nil || e != (gpio.Edge{Level: gpio.Low, Time: at(3)}) {
		t.Fatalf("edge at deadline: %v, %v", e, err)
	}
	if lvl, _ := l.Read(); lvl != gpio.Low {
		t.Fatalf("level %v after falling edge", lvl)
	}
	e, _ = l.WaitEdge(ctx, time.Time{})
	if e != (gpio.Edge{Level: gpio.High, Time: at(10)}) {
		t.Fatalf("third edge %v", e)
	}
	// Queue empty, not ended: a deadline waits for a push (it cannot know
	// the future). Push from another goroutine.
	go func() { _ = s.Push(ctx, gpio.Edge{Level: gpio.Low, Time: at(50)}) }()
	e, err = l.WaitEdge(ctx, at(20))
	if !errors.Is(err, os.ErrDeadlineExceeded) || !e.Time.Equal(at(20)) {
		t.Fatalf("deadline before a later push: %v, %v", e, err)
	}
	s.End()
	e, err = l.WaitEdge(ctx, at(100))
	if err != nil || e != (gpio.Edge{Level: gpio.Low, Time: at(50)}) {
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
	s := New("DI1", Config{Virtual: true, Start: t0})
	if err := s.Push(ctx, gpio.Edge{Level: gpio.Low, Time: at(1)}); !errors.Is(err, ErrBadEdge) {
		t.Fatalf("edge to the same level: %v", err)
	}
	if err := s.Push(ctx, gpio.Edge{Level: gpio.High, Time: at(-1)}); !errors.Is(err, ErrBadEdge) {
		t.Fatalf("edge before the clock: %v", err)
	}
	if err := s.Push(ctx, gpio.Edge{Level: gpio.High, Time: at(5)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Push(ctx, gpio.Edge{Level: gpio.Low, Time: at(4)}); !errors.Is(err, ErrBadEdge) {
		t.Fatalf("edge back in time: %v", err)
	}
	s.End()
	if err := s.Push(ctx, gpio.Edge{Level: gpio.Low, Time: at(6)}); !errors.Is(err, ErrBadEdge) {
		t.Fatalf("push after End: %v", err)
	}
}

func TestSimOneRequestAtATimeAndBreak(t *testing.T) {
	ctx := context.Background()
	s := New("DI2", Config{Virtual: true, Start: t0})
	l, err := s.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx); !errors.Is(err, gpio.ErrLine) {
		t.Fatalf("second request: %v", err)
	}
	boom := errors.New("chip removed")
	done := make(chan error, 1)
	go func() {
		_, err := l.WaitEdge(ctx, time.Time{})
		done <- err
	}()
	s.Break(boom)
	if err := <-done; !errors.Is(err, gpio.ErrLine) || !errors.Is(err, boom) {
		t.Fatalf("waiting reader after Break: %v", err)
	}
	if _, err := l.Read(); !errors.Is(err, gpio.ErrLine) {
		t.Fatalf("read after Break: %v", err)
	}
	l.Close()
	l2, err := s.Open(ctx)
	if err != nil {
		t.Fatalf("request after Break and Close: %v", err)
	}
	l2.Close()
	if _, err := l2.Read(); !errors.Is(err, gpio.ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
}

func TestSimPushWaitsForCapacity(t *testing.T) {
	ctx := context.Background()
	s := New("DI3", Config{Virtual: true, Start: t0, Capacity: 2})
	pushed := make(chan error, 1)
	go func() {
		pushed <- s.Push(ctx, gpio.Edge{Level: gpio.High, Time: at(1)}, gpio.Edge{Level: gpio.Low, Time: at(2)}, gpio.Edge{Level: gpio.High, Time: at(3)}, gpio.Edge{Level: gpio.Low, Time: at(4)})
	}()
	l, _ := s.Open(ctx)
	defer l.Close()
	for i, want := range []gpio.Edge{{Level: gpio.High, Time: at(1)}, {Level: gpio.Low, Time: at(2)}, {Level: gpio.High, Time: at(3)}, {Level: gpio.Low, Time: at(4)}} {
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
	s := New("DI4", Config{})
	l, _ := s.Open(ctx)
	defer l.Close()
	start := time.Now()
	due := start.Add(30 * time.Millisecond)
	if err := s.Push(ctx, gpio.Edge{Level: gpio.High, Time: due}); err != nil {
		t.Fatal(err)
	}
	if lvl, _ := l.Read(); lvl != gpio.Low {
		t.Fatal("level changed before the edge's time")
	}
	e, err := l.WaitEdge(ctx, start.Add(10*time.Second))
	if err != nil || e != (gpio.Edge{Level: gpio.High, Time: due}) {
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
	s := New("DI5", Config{})
	past := time.Now().Add(-time.Second)
	if err := s.Push(ctx, gpio.Edge{Level: gpio.High, Time: past}, gpio.Edge{Level: gpio.Low, Time: past.Add(time.Millisecond)}, gpio.Edge{Level: gpio.High, Time: past.Add(2 * time.Millisecond)}); err != nil {
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
