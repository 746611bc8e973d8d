package gpio_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/townlink/townlink/hardware/gpio"
	"github.com/townlink/townlink/hardware/gpiosim"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }

func TestInputReconnectsAfterLineError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := gpiosim.New("DI1", gpiosim.Config{Virtual: true, Start: t0})
	in := gpio.NewInput("DI1", s.Open, gpio.InputConfig{Backoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, Clock: s.Now})
	defer in.Close()

	high, now, err := in.Level(ctx)
	if err != nil || high || !now.Equal(t0) {
		t.Fatalf("Level = %v %v %v", high, now, err)
	}
	if err := s.Push(ctx, gpio.Edge{Level: gpio.High, Time: at(1)}); err != nil {
		t.Fatal(err)
	}
	if high, when, err := in.NextEdge(ctx, time.Time{}); err != nil || !high || !when.Equal(at(1)) {
		t.Fatalf("edge = %v %v %v", high, when, err)
	}

	// The chip goes away, and requests fail three times before it is back.
	s.SetOpenError(errors.New("ENODEV"))
	s.Break(errors.New("chip removed"))
	done := make(chan struct{})
	var awayErr error
	go func() {
		defer close(done)
		for s.Opens() == 1 && in.LineErrors() < 4 {
			time.Sleep(time.Millisecond)
		}
		awayErr = in.Err()
		s.SetOpenError(nil)
	}()
	if err := s.Push(ctx, gpio.Edge{Level: gpio.Low, Time: at(2)}); err != nil {
		t.Fatal(err)
	}
	high, when, err := in.NextEdge(ctx, time.Time{})
	<-done
	if err != nil || high || !when.Equal(at(2)) {
		t.Fatalf("edge after reconnect = %v %v %v", high, when, err)
	}
	if s.Opens() != 2 {
		t.Fatalf("%d requests, want 2", s.Opens())
	}
	if !errors.Is(awayErr, gpio.ErrLine) {
		t.Fatalf("Err while the line was away = %v, want ErrLine", awayErr)
	}
	if err := in.Err(); err != nil {
		t.Fatalf("Err after the line came back = %v, want nil", err)
	}
	if n := in.LineErrors(); n < 4 {
		t.Fatalf("LineErrors = %d, want ≥ 4 (one break, three failed requests)", n)
	}
}

func TestInputReportsChangeWhileAway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Wall clock: while no request is open, edges are missed (no events),
	// but the level they set is found when the line comes back.
	s := gpiosim.New("DI2", gpiosim.Config{})
	in := gpio.NewInput("DI2", s.Open, gpio.InputConfig{Backoff: 20 * time.Millisecond})
	defer in.Close()
	if high, _, err := in.Level(ctx); err != nil || high {
		t.Fatalf("Level = %v %v", high, err)
	}
	s.Break(errors.New("EIO"))
	// While the Input is in its back-off, the line rises.
	got := make(chan error, 1)
	var high bool
	var when time.Time
	go func() {
		var err error
		high, when, err = in.NextEdge(ctx, time.Time{})
		got <- err
	}()
	for in.LineErrors() == 0 {
		time.Sleep(time.Millisecond)
	}
	before := time.Now()
	if err := s.Set(ctx, gpio.High); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if !high || when.Before(before) {
		t.Fatalf("change while away = %v at %v (line rose after %v)", high, when, before)
	}
}

func TestInputDeadlineWhileAway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := gpiosim.New("DI3", gpiosim.Config{})
	s.SetOpenError(errors.New("EBUSY"))
	in := gpio.NewInput("DI3", s.Open, gpio.InputConfig{Backoff: time.Millisecond})
	_, _, err := in.NextEdge(ctx, time.Now().Add(30*time.Millisecond))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline with the line away: %v", err)
	}
	in.Close()
	if _, _, err := in.NextEdge(ctx, time.Time{}); !errors.Is(err, gpio.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestInputCloseStopsWaitingReader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := gpiosim.New("DI4", gpiosim.Config{Virtual: true, Start: t0})
	in := gpio.NewInput("DI4", s.Open, gpio.InputConfig{Clock: s.Now})
	if _, _, err := in.Level(ctx); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, _, err := in.NextEdge(ctx, time.Time{})
		got <- err
	}()
	time.Sleep(5 * time.Millisecond)
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; !errors.Is(err, gpio.ErrClosed) {
		t.Fatalf("reader after Close: %v", err)
	}
	if _, err := s.Open(ctx); err != nil {
		t.Fatalf("line still requested after Close: %v", err)
	}
}
