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
	"github.com/townlink/townlink/hardware/serialsim"
)

// fakePoller answers (or not) without touching the port; the line owner's
// scheduling is what is under test here.
type fakePoller struct {
	id     string
	silent atomic.Bool
	polls  atomic.Int64
	delay  time.Duration
}

func (f *fakePoller) Poll(ctx context.Context, dst []drivers.Reading) ([]drivers.Reading, error) {
	f.polls.Add(1)
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	if f.silent.Load() {
		return dst, drivers.ErrTimeout
	}
	return append(dst, drivers.Reading{Device: f.id, Values: map[string]drivers.Value{"n": drivers.Int(f.polls.Load())}}), nil
}

// ptyPort opens a real PTY and its slave side as the line's port.
func ptyOpener(t *testing.T) func() (bus.Port, error) {
	pty, err := serialsim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pty.Close() })
	return func() (bus.Port, error) {
		f, err := os.OpenFile(pty.Path(), os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		return &filePort{f}, nil
	}
}

type filePort struct{ *os.File }

func (p *filePort) SetReadTimeout(time.Duration) error { return nil }
func (p *filePort) Flush() error                       { return nil }

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

func device(p *fakePoller, every time.Duration) bus.Device {
	return bus.Device{ID: p.id, Interval: every, New: func(hardware.Port) (drivers.Poller, error) { return p, nil }}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSilentDeviceGoesDownAndDoesNotStallTheOthers(t *testing.T) {
	live := &fakePoller{id: "live"}
	dead := &fakePoller{id: "dead", delay: 30 * time.Millisecond} // a timeout costs time
	dead.silent.Store(true)
	c := &collector{}
	cfg := bus.Config{Name: "L1", Mode: hardware.Mode{Baud: 9600}, Open: ptyOpener(t), Emit: c.emit,
		Devices: []bus.Device{device(live, 20*time.Millisecond), device(dead, 20*time.Millisecond)}, MaxBackoff: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	l := newLine(t, cfg)
	go func() { done <- l.Run(ctx) }()

	waitFor(t, "dead device down", func() bool { return l.States()["dead"].State == bus.Down })
	deadPolls := dead.polls.Load()
	livePolls := live.polls.Load()
	waitFor(t, "40 more polls of the live device", func() bool { return live.polls.Load() >= livePolls+40 })
	// Backed off: while the live device was polled 40 times at the same
	// interval, the dead one was tried far fewer times.
	if extra := dead.polls.Load() - deadPolls; extra > 10 {
		t.Errorf("dead device polled %d times during 40 live polls; want it backed off", extra)
	}
	if s := l.States()["live"]; s.State != bus.OK {
		t.Errorf("live device state = %+v", s)
	}
	if got := l.States()["dead"].LastErr; got == "" {
		t.Error("dead device has no last error")
	}
	st := l.Stats()
	if st.Timeouts < 3 || st.OK < 40 || st.Transactions != st.OK+st.Timeouts {
		t.Errorf("stats = %+v", st)
	}

	// It comes back: the next try after its back-off succeeds.
	dead.silent.Store(false)
	waitFor(t, "dead device back", func() bool { return l.States()["dead"].State == bus.OK })
	if c.count("dead") == 0 {
		t.Error("no readings emitted from the recovered device")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
}

func TestMissingPortMarksDevicesDownAndKeepsTrying(t *testing.T) {
	var opens atomic.Int64
	p := &fakePoller{id: "m1"}
	cfg := bus.Config{Name: "L9", Mode: hardware.Mode{Baud: 9600},
		Open: func() (bus.Port, error) {
			opens.Add(1)
			return nil, errors.New("open /dev/ttyUSB9: no such file or directory")
		},
		Devices: []bus.Device{device(p, time.Second)}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	l := newLine(t, cfg)
	go func() { done <- l.Run(ctx) }()
	waitFor(t, "an open attempt", func() bool { return opens.Load() >= 1 })
	if s := l.States()["m1"]; s.State != bus.Down || s.LastErr == "" {
		t.Errorf("state = %+v, want down with the open error", s)
	}
	if err := l.Do(ctx, func(context.Context, hardware.Port) error { return nil }); !errors.Is(err, bus.ErrLine) {
		t.Errorf("Do on a closed line = %v, want ErrLine", err)
	}
	cancel()
	<-done
	if p.polls.Load() != 0 {
		t.Error("polled a device on a line that never opened")
	}
}

func TestPollNowAndEmitErrors(t *testing.T) {
	p := &fakePoller{id: "m1"}
	c := &collector{err: errors.New("disk full")}
	cfg := bus.Config{Name: "L1", Mode: hardware.Mode{Baud: 9600}, Open: ptyOpener(t), Emit: c.emit,
		Devices: []bus.Device{device(p, time.Hour)}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := newLine(t, cfg)
	go l.Run(ctx)
	rs, err := l.PollNow(ctx, "m1")
	if len(rs) != 1 || rs[0].Device != "m1" {
		t.Fatalf("PollNow = %v, %v", rs, err)
	}
	if err == nil || err.Error() == "" {
		t.Fatalf("an emit failure must be reported, got %v", err)
	}
	if _, err := l.PollNow(ctx, "nope"); !errors.Is(err, bus.ErrLine) {
		t.Fatalf("PollNow(unknown) = %v", err)
	}
}

func TestUtilisation(t *testing.T) {
	s := bus.Stats{Busy: time.Second, Uptime: 4 * time.Second}
	if s.Utilisation() != 0.25 {
		t.Fatalf("utilisation = %v", s.Utilisation())
	}
}
