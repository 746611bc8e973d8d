package netpoll_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/health"
	"github.com/townlink/townlink/gateway/netpoll"
)

// script is a driver whose polls succeed or fail as the test says.
type script struct {
	mu   sync.Mutex
	fail bool
	n    int
}

func (s *script) Poll(_ context.Context, dst []drivers.Reading) ([]drivers.Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if s.fail {
		return dst, errors.New("connection refused")
	}
	return append(dst, drivers.Reading{Class: drivers.Telemetry, Values: map[string]drivers.Value{"n": drivers.Int(int64(s.n))}}), nil
}

func (s *script) WritePoint(context.Context, string, drivers.Value) error { return nil }

func (s *script) set(fail bool) { s.mu.Lock(); s.fail = fail; s.mu.Unlock() }

func TestHealthFollowsThePolls(t *testing.T) {
	drv := &script{}
	d, err := netpoll.New("pump-tcp", time.Millisecond, drv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := d.State(); st != health.Degraded {
		t.Errorf("before the first poll: %v", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan drivers.Reading, 1000)
	done := make(chan struct{})
	go func() { d.Run(ctx, func(r drivers.Reading) error { got <- r; return nil }); close(done) }()
	r := <-got
	if r.Device != "pump-tcp" {
		t.Errorf("reading from %q", r.Device)
	}
	wait := func(want health.State) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for d.State() != want {
			if time.Now().After(deadline) {
				t.Fatalf("state %v, want %v", d.State(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	wait(health.Ok)
	drv.set(true)
	wait(health.Down)
	drv.set(false)
	wait(health.Ok)
	cancel()
	<-done
	if reads, errs := d.Counts(); reads == 0 || errs < netpoll.DownAfter {
		t.Errorf("counts %d reads, %d errors", reads, errs)
	}
}

func TestNewRefusesABadDevice(t *testing.T) {
	if _, err := netpoll.New("x", 0, &script{}, nil); !errors.Is(err, netpoll.ErrConfig) {
		t.Errorf("interval 0: %v", err)
	}
	if _, err := netpoll.New("", time.Second, &script{}, nil); !errors.Is(err, netpoll.ErrConfig) {
		t.Errorf("no id: %v", err)
	}
}
