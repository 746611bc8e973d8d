package bus_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/bus"
	"github.com/townlink/townlink/hardware"
)

// fakeClock is a bus.Clock whose time moves only when the line waits: a
// timer fires at once, moving the time to its deadline, unless its
// deadline is past the horizon; then it is parked (the line idles) until
// the test ends. Only the line's goroutine arms timers.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	horizon time.Time
	parked  []*fakeTimer
}

var _ bus.Clock = (*fakeClock)(nil)

var epoch = time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)

// newFakeClock starts at epoch; timers fire up to horizon after it.
func newFakeClock(horizon time.Duration) *fakeClock {
	return &fakeClock{now: epoch, horizon: epoch.Add(horizon)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// advance moves the time on by d: a fake device taking time to answer.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) NewTimer(d time.Duration) bus.Timer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// isParked reports whether a timer waits past the horizon.
func (c *fakeClock) isParked() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.parked) > 0
}

// waitParked waits (in real time) until the line idles at the horizon.
func (c *fakeClock) waitParked(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !c.isParked(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the line never reached the fake clock's horizon")
		}
	}
}

// stopAtHorizon fails the test and cancels a line run synchronously if it
// idles at the horizon before the test's own condition ended it.
func stopAtHorizon(ctx context.Context, t *testing.T, c *fakeClock, cancel func()) {
	for !c.isParked() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Millisecond):
		}
	}
	t.Errorf("the line idled at the fake clock's horizon %v", c.Now())
	cancel()
}

type fakeTimer struct {
	c  *fakeClock
	ch chan time.Time
	at time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	c := t.c
	c.mu.Lock()
	for i, p := range c.parked {
		if p == t {
			c.parked = append(c.parked[:i], c.parked[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
	select {
	case <-t.ch:
	default:
	}
	return true
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.Stop()
	t.arm(t.c.Now().Add(d))
	return true
}

func (t *fakeTimer) arm(at time.Time) {
	c := t.c
	c.mu.Lock()
	t.at = at
	if at.After(c.horizon) {
		c.parked = append(c.parked, t)
		c.mu.Unlock()
		return
	}
	if at.After(c.now) {
		c.now = at
	}
	c.mu.Unlock()
	t.ch <- at
}

// fakePoller answers (or not) without a real device; the line owner's
// scheduling is what is under test. A silent poll costs cost of fake time
// (the driver's timeout).
type fakePoller struct {
	id       string
	clock    *fakeClock
	cost     time.Duration
	silent   atomic.Bool
	polls    atomic.Int64
	timeouts atomic.Int64
	after    func(n int64) // called after each poll with the poll count
}

func (f *fakePoller) Poll(ctx context.Context, dst []drivers.Reading) ([]drivers.Reading, error) {
	n := f.polls.Add(1)
	if f.after != nil {
		defer f.after(n)
	}
	if f.silent.Load() {
		f.timeouts.Add(1)
		if f.clock != nil {
			f.clock.advance(f.cost)
		}
		return dst, drivers.ErrTimeout
	}
	return append(dst, drivers.Reading{Device: f.id, Values: map[string]drivers.Value{"n": drivers.Int(n)}}), nil
}

func device(p *fakePoller, every time.Duration) bus.Device {
	return bus.Device{ID: p.id, Interval: every, New: func(hardware.Port) (drivers.Poller, error) { return p, nil }}
}

// memPort is a line with nothing on it: writes vanish, reads time out.
type memPort struct{ closed atomic.Bool }

func (p *memPort) Write(b []byte) (int, error) { return len(b), nil }
func (p *memPort) Read([]byte) (int, error) {
	if p.closed.Load() {
		return 0, os.ErrClosed
	}
	return 0, os.ErrDeadlineExceeded
}
func (p *memPort) SetReadTimeout(time.Duration) error { return nil }
func (p *memPort) Flush() error                       { return nil }
func (p *memPort) Close() error                       { p.closed.Store(true); return nil }

func memOpener() func() (bus.Port, error) {
	return func() (bus.Port, error) { return &memPort{}, nil }
}

type collector struct {
	mu  sync.Mutex
	got map[string]int
	err error
}

func (c *collector) emit(_ context.Context, rs []drivers.Reading) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.got == nil {
		c.got = map[string]int{}
	}
	for _, r := range rs {
		c.got[r.Device]++
	}
	return c.err
}

func (c *collector) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[id]
}

// runAsync runs l until the test ends and checks it stops with ctx.
func runAsync(t *testing.T, l *bus.Line) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	})
}
