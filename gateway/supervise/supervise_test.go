package supervise

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func fast() Options {
	return Options{MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, Stable: time.Hour}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestAStoppedPartIsRestartedAndReported(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := New(nil, fast())
	var starts atomic.Int32
	s.Go(ctx, "line RS485-1", func(ctx context.Context) error {
		if starts.Add(1) <= 3 {
			return errors.New("port vanished")
		}
		<-ctx.Done()
		return nil
	})
	waitFor(t, "the fourth start", func() bool { return starts.Load() == 4 })
	st := s.Parts()["line RS485-1"]
	if st.Restarts != 3 || !st.Running || st.LastErr != "port vanished" {
		t.Errorf("status %+v, want 3 restarts, running, last error reported", st)
	}
	cancel()
	s.Wait()
	if st := s.Parts()["line RS485-1"]; st.Running || st.Restarts != 3 {
		t.Errorf("after stop: %+v", st)
	}
}

func TestAPanicIsRecoveredAndRestarted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := New(nil, fast())
	var starts atomic.Int32
	s.Go(ctx, "forwarder", func(ctx context.Context) error {
		if starts.Add(1) == 1 {
			var m map[string]int
			m["x"] = 1 // panics
		}
		<-ctx.Done()
		return nil
	})
	waitFor(t, "the restart after the panic", func() bool { return starts.Load() == 2 })
	if st := s.Parts()["forwarder"]; st.Restarts != 1 || len(st.LastErr) == 0 || st.LastErr[:6] != "panic:" {
		t.Errorf("status %+v, want one restart after a panic", st)
	}
	cancel()
	s.Wait()
}

func TestAPartThatEndsWithTheGatewayIsNotRestarted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := New(nil, fast())
	var starts atomic.Int32
	s.Go(ctx, "status", func(ctx context.Context) error {
		starts.Add(1)
		<-ctx.Done()
		return ctx.Err()
	})
	waitFor(t, "start", func() bool { return starts.Load() == 1 })
	cancel()
	s.Wait()
	if n := starts.Load(); n != 1 {
		t.Errorf("started %d times", n)
	}
	if st := s.Parts()["status"]; st.Restarts != 0 || st.Running {
		t.Errorf("status %+v", st)
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := New(nil, Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, Stable: time.Hour})
	var times []time.Time
	done := make(chan struct{})
	s.Go(ctx, "flaky", func(ctx context.Context) error {
		times = append(times, time.Now())
		if len(times) == 5 {
			close(done)
			<-ctx.Done()
		}
		return errors.New("down")
	})
	<-done
	cancel()
	s.Wait()
	// Lower bounds only: each gap is at least the back-off in force.
	want := []time.Duration{20, 40, 40, 40}
	for i, w := range want {
		if gap := times[i+1].Sub(times[i]); gap < w*time.Millisecond {
			t.Errorf("restart %d after %v, want at least %v", i+1, gap, w*time.Millisecond)
		}
	}
}
