package bus_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/bus"
	"github.com/townlink/townlink/hardware"
)

var mode9600 = hardware.Mode{Baud: 9600}

// A dead device goes down after DownAfter polls, is then tried once per
// back-off window (here: at the start of the window's second half), does
// not stall the live one, and comes back at its next try. All on a fake
// clock: the line runs synchronously until the live device has had its
// fill.
func TestSilentDeviceGoesDownAndDoesNotStallTheOthers(t *testing.T) {
	clk := newFakeClock(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dead := &fakePoller{id: "dead", clock: clk, cost: 30 * time.Millisecond}
	dead.silent.Store(true)
	var l *bus.Line
	var atDown, deadAtDown, deadAt200 int64
	live := &fakePoller{id: "live", after: func(n int64) {
		st := l.States()["dead"]
		switch {
		case atDown == 0 && st.State == bus.Down:
			atDown, deadAtDown = n, dead.polls.Load()
		case atDown != 0 && n == atDown+200:
			deadAt200 = dead.polls.Load()
			dead.silent.Store(false) // 4 s later: it comes back
		case atDown != 0 && n > atDown+200 && st.State == bus.OK:
			cancel()
		}
	}}
	c := &collector{}
	l = newLine(t, bus.Config{Name: "L1", Mode: mode9600, Open: memOpener(), Emit: c.emit, Clock: clk,
		MaxBackoff: time.Second, Jitter: func(time.Duration) time.Duration { return 0 },
		Devices: []bus.Device{device(live, 20*time.Millisecond), device(dead, 20*time.Millisecond)}})
	go stopAtHorizon(ctx, t, clk, cancel)
	if err := l.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if atDown == 0 || deadAtDown != bus.DefaultDownAfter {
		t.Fatalf("dead device down after %d polls (live at %d), want %d", deadAtDown, atDown, bus.DefaultDownAfter)
	}
	// 200 live polls of 20 ms = 4 s; back-off windows of 1 s (MaxBackoff)
	// tried half-way through: at most 8 tries, and at least 3.
	during := deadAt200 - deadAtDown
	if during < 3 || during > 8 {
		t.Errorf("dead device tried %d times while the live one was polled 200 times; want one per half-window", during)
	}
	st := l.States()
	if st["live"].State != bus.OK || st["dead"].State != bus.OK || st["dead"].Backoff != 0 {
		t.Errorf("states %+v; want both ok, the dead one no longer backed off", st)
	}
	if c.count("dead") == 0 {
		t.Error("no readings emitted from the recovered device")
	}
	s := l.Stats()
	// Every silent poll timed out; all but the first were probes, and so
	// was the try that found the device back.
	if silent := uint64(dead.timeouts.Load()); s.Transactions != s.OK+s.Timeouts || s.Timeouts != silent || s.Probes != silent {
		t.Errorf("stats %+v for %d silent polls", s, silent)
	}
}

// Interval 0 polls continuously: devices take turns, none is starved, and
// the line never waits between polls.
func TestContinuousPollingTakesTurns(t *testing.T) {
	clk := newFakeClock(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ps := []*fakePoller{{id: "a"}, {id: "b"}, {id: "c"}}
	cfg := bus.Config{Name: "L1", Mode: mode9600, Open: memOpener(), Clock: clk}
	var total int
	for _, p := range ps {
		p.after = func(int64) {
			if total++; total == 300 {
				cancel()
			}
		}
		cfg.Devices = append(cfg.Devices, device(p, 0))
	}
	l := newLine(t, cfg)
	if err := l.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	for _, p := range ps {
		if n := p.polls.Load(); n != 100 {
			t.Errorf("%s polled %d times of 300; want equal turns", p.id, n)
		}
		if s := l.States()[p.id]; s.State != bus.OK || s.Polls != 100 || s.LastOK.IsZero() {
			t.Errorf("%s: %+v", p.id, s)
		}
	}
	if !clk.Now().Equal(epoch) {
		t.Errorf("the line waited %v between continuous polls", clk.Now().Sub(epoch))
	}
}

// Each device keeps its phase: a 100 ms device and a 250 ms one are
// polled 10 and 4 times in the first second, whatever the other does.
func TestIntervalsKeepTheirPhase(t *testing.T) {
	clk := newFakeClock(time.Second - time.Millisecond)
	fast, slow := &fakePoller{id: "fast"}, &fakePoller{id: "slow"}
	l := newLine(t, bus.Config{Name: "L1", Mode: mode9600, Open: memOpener(), Clock: clk,
		Devices: []bus.Device{device(fast, 100*time.Millisecond), device(slow, 250*time.Millisecond)}})
	runAsync(t, l)
	clk.waitParked(t)
	if f, s := fast.polls.Load(), slow.polls.Load(); f != 10 || s != 4 {
		t.Errorf("in 1 s: fast polled %d times (want 10), slow %d (want 4)", f, s)
	}
	st := l.States()
	if got := st["slow"].Next.Sub(epoch); got != 1125*time.Millisecond {
		// Spread start: device 1 of 2 starts at 250ms/2, then every 250 ms.
		t.Errorf("slow next due at +%v, want +1.125s", got)
	}
}

func TestMissingPortMarksDevicesDownAndKeepsTrying(t *testing.T) {
	opens := 0
	p := &fakePoller{id: "m1"}
	clk := newFakeClock(10 * time.Minute)
	l := newLine(t, bus.Config{Name: "L9", Mode: mode9600, Clock: clk,
		Open: func() (bus.Port, error) {
			opens++
			return nil, errors.New("open /dev/ttyUSB9: no such file or directory")
		},
		Devices: []bus.Device{device(p, time.Second)}})
	runAsync(t, l)
	clk.waitParked(t)
	if err := l.Do(t.Context(), func(context.Context, hardware.Port) error { return nil }); !errors.Is(err, bus.ErrLine) {
		t.Errorf("Do on a closed line = %v, want ErrLine", err)
	}
	if s := l.States()["m1"]; s.State != bus.Down || !strings.Contains(s.LastErr, "ttyUSB9") {
		t.Errorf("state = %+v, want down with the open error", s)
	}
	// Retries double from 1 s to a minute: opens at 0, 1, 3, 7, 15, 31 and
	// 63 s, then every minute up to 543 s: 15 opens in 10 minutes.
	if opens != 15 {
		t.Errorf("%d open attempts in 10 minutes, want 15", opens)
	}
	if p.polls.Load() != 0 {
		t.Error("polled a device on a line that never opened")
	}
}

func TestPollNowAndEmitErrors(t *testing.T) {
	p := &fakePoller{id: "m1"}
	c := &collector{err: errors.New("disk full")}
	clk := newFakeClock(time.Minute)
	l := newLine(t, bus.Config{Name: "L1", Mode: mode9600, Open: memOpener(), Emit: c.emit, Clock: clk,
		Devices: []bus.Device{device(p, time.Hour)}})
	runAsync(t, l)
	clk.waitParked(t) // polled once at the start; next due in an hour
	rs, err := l.PollNow(t.Context(), "m1")
	if len(rs) != 1 || rs[0].Device != "m1" || !rs[0].Time.Equal(epoch) {
		t.Fatalf("PollNow = %v, %v", rs, err)
	}
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("an emit failure must be reported, got %v", err)
	}
	if _, err := l.PollNow(t.Context(), "nope"); !errors.Is(err, bus.ErrLine) {
		t.Fatalf("PollNow(unknown) = %v", err)
	}
	if s := l.Stats(); s.Jobs != 2 || s.Transactions != 2 || p.polls.Load() != 2 {
		t.Errorf("stats %+v after one scheduled poll and two PollNow jobs", s)
	}
}

// A port that fails is closed and reopened; its devices are down
// meanwhile and polled again after.
func TestFailedPortIsReopened(t *testing.T) {
	clk := newFakeClock(time.Minute)
	var ports []*memPort
	open := func() (bus.Port, error) {
		p := &memPort{}
		ports = append(ports, p)
		return p, nil
	}
	var l *bus.Line
	reader := &portPoller{}
	l = newLine(t, bus.Config{Name: "L1", Mode: mode9600, Open: open, Clock: clk,
		Devices: []bus.Device{{ID: "r", Interval: time.Second, New: func(p hardware.Port) (drivers.Poller, error) {
			reader.port = p
			return reader, nil
		}}}})
	reader.fail = func() bool { return len(ports) == 1 } // the first port breaks
	runAsync(t, l)
	clk.waitParked(t)
	s := l.Stats()
	if len(ports) != 2 || s.Reopens != 1 || !s.PortOpen || !ports[0].closed.Load() {
		t.Fatalf("%d opens, stats %+v; want the broken port closed and one reopen", len(ports), s)
	}
	if st := l.States()["r"]; st.State != bus.OK {
		t.Errorf("device after the reopen: %+v", st)
	}
}

// portPoller reads its port; while fail says so, the port is closed under
// it first (a USB adapter pulled out).
type portPoller struct {
	port hardware.Port
	fail func() bool
}

func (p *portPoller) Poll(_ context.Context, dst []drivers.Reading) ([]drivers.Reading, error) {
	if p.fail() {
		if c, ok := p.port.(interface{ Close() error }); ok {
			c.Close()
		}
	}
	if _, err := p.port.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return dst, err
	}
	return append(dst, drivers.Reading{Values: map[string]drivers.Value{"x": drivers.Int(1)}}), nil
}

func TestUtilisation(t *testing.T) {
	s := bus.Stats{Busy: time.Second, Uptime: 4 * time.Second}
	if s.Utilisation() != 0.25 {
		t.Fatalf("utilisation = %v", s.Utilisation())
	}
}
