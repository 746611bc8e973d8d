package bus_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/bus"
	"github.com/townlink/townlink/hardware"
)

func TestNewChecksConfigAndKeepsItsOwnCopy(t *testing.T) {
	p := &fakePoller{id: "m1"}
	good := bus.Config{Name: "L1", Mode: mode9600, Open: memOpener(), Devices: []bus.Device{device(p, time.Second)}}
	for name, mut := range map[string]func(c *bus.Config){
		"no name":      func(c *bus.Config) { c.Name = "" },
		"no open":      func(c *bus.Config) { c.Open = nil },
		"bad baud":     func(c *bus.Config) { c.Mode.Baud = 0 },
		"negative gap": func(c *bus.Config) { c.Gap = -time.Millisecond },
		"huge gap":     func(c *bus.Config) { c.Gap = time.Minute },
		"backoff":      func(c *bus.Config) { c.MinBackoff, c.MaxBackoff = time.Minute, time.Second },
		"twice":        func(c *bus.Config) { c.Devices = append(c.Devices, c.Devices[0]) },
		"no id":        func(c *bus.Config) { c.Devices = []bus.Device{{New: c.Devices[0].New}} },
		"no New":       func(c *bus.Config) { c.Devices = []bus.Device{{ID: "x"}} },
		"interval":     func(c *bus.Config) { c.Devices[0].Interval = -time.Second },
	} {
		c := good
		c.Devices = append([]bus.Device(nil), good.Devices...)
		mut(&c)
		if _, err := bus.New(c); !errors.Is(err, bus.ErrConfig) {
			t.Errorf("%s: New = %v, want ErrConfig", name, err)
		}
	}
	before := good
	before.Devices = append([]bus.Device(nil), good.Devices...)
	l, err := bus.New(good)
	if err != nil {
		t.Fatal(err)
	}
	good.Devices[0].ID = "changed later"
	if good.DownAfter != 0 || good.Logger != nil || good.Clock != nil || before.Devices[0].ID != "m1" {
		t.Errorf("New changed the caller's config: %+v", good)
	}
	if !l.Has("m1") || l.Has("changed later") || l.Name() != "L1" {
		t.Error("the line does not keep its own copy of the devices")
	}
	if st := l.States()["m1"]; st.State != bus.Degraded || st.LastErr == "" {
		t.Errorf("a device not polled yet: %+v", st)
	}
}

// wirePort answers every request with one byte, at once, and notes on the
// fake clock when each request was written and each reply byte read.
type wirePort struct {
	clk    *fakeClock
	mu     sync.Mutex
	writes []time.Time
	reads  []time.Time
	owed   int
}

func (p *wirePort) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writes = append(p.writes, p.clk.Now())
	p.owed++
	return len(b), nil
}

func (p *wirePort) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.owed == 0 {
		return 0, os.ErrDeadlineExceeded
	}
	p.owed--
	p.reads = append(p.reads, p.clk.Now())
	b[0] = 0x55
	return 1, nil
}
func (p *wirePort) SetReadTimeout(time.Duration) error { return nil }
func (p *wirePort) Flush() error                       { return nil }
func (p *wirePort) Close() error                       { return nil }

// gapPoller sends requests, reads each reply and declares its gap.
type gapPoller struct {
	port     hardware.Port
	gap      time.Duration
	requests int
	polls    int    // with done: call done after this many polls
	done     func() // ends the run
	n        int
}

func (g *gapPoller) FrameGap() time.Duration { return g.gap }

func (g *gapPoller) Poll(_ context.Context, dst []drivers.Reading) ([]drivers.Reading, error) {
	if g.n++; g.done != nil && g.n == g.polls {
		defer g.done()
	}
	for range g.requests {
		if _, err := g.port.Write([]byte{1, 2, 3}); err != nil {
			return dst, err
		}
		if _, err := g.port.Read(make([]byte, 1)); err != nil {
			return dst, err
		}
	}
	return append(dst, drivers.Reading{Values: map[string]drivers.Value{"x": drivers.Int(1)}}), nil
}

// The silence before every request is the longest of the line's t3.5,
// Config.Gap and the gap the device's driver declares, from the last byte
// on the wire.
func TestGapKeptIsTheDriversDeclaredGap(t *testing.T) {
	clk := newFakeClock(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wp := &wirePort{clk: clk}
	slow := &gapPoller{gap: 40 * time.Millisecond, requests: 2, polls: 3, done: cancel}
	quick := &gapPoller{gap: 0, requests: 2}
	l := newLine(t, bus.Config{Name: "L1", Mode: mode9600, Gap: 10 * time.Millisecond, Clock: clk,
		Open:    func() (bus.Port, error) { return wp, nil },
		Devices: []bus.Device{gapDevice("slow", 100*time.Millisecond, slow), gapDevice("quick", 100*time.Millisecond, quick)}})
	go stopAtHorizon(ctx, t, clk, cancel)
	if err := l.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	wp.mu.Lock()
	defer wp.mu.Unlock()
	if len(wp.writes) < 10 || len(wp.reads) != len(wp.writes) {
		t.Fatalf("%d requests, %d replies", len(wp.writes), len(wp.reads))
	}
	// Polls alternate (slow at 0, 100, 200 ms; quick at 50, 150 ms), two
	// requests each: request i is slow's when i%4 < 2.
	for i := 1; i < len(wp.writes); i++ {
		want := 10 * time.Millisecond
		if i%4 < 2 {
			want = 40 * time.Millisecond
		}
		if got := wp.writes[i].Sub(wp.reads[i-1]); got < want || (i%2 == 1 && got != want) {
			t.Errorf("request %d written %v after the last reply, want %v", i, got, want)
		}
	}
	if s := l.Stats(); s.Silence < 3*40*time.Millisecond || s.Requests != uint64(len(wp.writes)) || s.BytesIn != uint64(len(wp.reads)) {
		t.Errorf("stats %+v for %d requests", s, len(wp.writes))
	}
}

// A job keeps the longest gap any device on the line declares.
func TestJobKeepsTheLongestGap(t *testing.T) {
	clk := newFakeClock(time.Minute)
	wp := &wirePort{clk: clk}
	l := newLine(t, bus.Config{Name: "L1", Mode: mode9600, Clock: clk, Open: func() (bus.Port, error) { return wp, nil },
		Devices: []bus.Device{
			gapDevice("slow", time.Hour, &gapPoller{gap: 100 * time.Millisecond, requests: 1}),
			gapDevice("quick", time.Hour, &gapPoller{gap: 20 * time.Millisecond, requests: 1}),
		}})
	runAsync(t, l)
	clk.waitParked(t) // both polled once; next due in an hour
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := l.Do(ctx, func(_ context.Context, p hardware.Port) error {
		for range 2 {
			if _, err := p.Write([]byte{9}); err != nil {
				return err
			}
			if _, err := p.Read(make([]byte, 1)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wp.mu.Lock()
	defer wp.mu.Unlock()
	n := len(wp.writes)
	if got := wp.writes[n-1].Sub(wp.reads[n-2]); got != 100*time.Millisecond {
		t.Errorf("the job's second request %v after its first reply, want 100ms", got)
	}
}

func gapDevice(id string, every time.Duration, g *gapPoller) bus.Device {
	return bus.Device{ID: id, Interval: every, New: func(p hardware.Port) (drivers.Poller, error) {
		g.port = p
		return g, nil
	}}
}

// retryPoller sends a request and, when nothing comes back, retries it
// the way a driver does: three requests per poll.
type retryPoller struct {
	port     hardware.Port
	cancels  int
	requests int
}

func (r *retryPoller) Poll(ctx context.Context, dst []drivers.Reading) ([]drivers.Reading, error) {
	for range 3 {
		if ctx.Err() != nil {
			r.cancels++
			return dst, ctx.Err()
		}
		if _, err := r.port.Write([]byte{1}); err != nil {
			continue // a probe's second request is refused; the context says why
		}
		r.requests++
		if _, err := r.port.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return dst, err
		}
	}
	if ctx.Err() != nil {
		r.cancels++
		return dst, ctx.Err()
	}
	return dst, drivers.ErrTimeout
}

// A silent device costs its driver's retries once; every later poll is a
// probe that lets one request go unanswered and then ends, counted as a
// timeout, not as the line stopping.
func TestProbeLetsOneRequestGoUnanswered(t *testing.T) {
	clk := newFakeClock(10 * time.Second)
	r := &retryPoller{}
	l := newLine(t, bus.Config{Name: "L1", Mode: mode9600, Clock: clk, Open: memOpener(), MaxBackoff: 2 * time.Second,
		Devices: []bus.Device{{ID: "dead", Interval: time.Second, New: func(p hardware.Port) (drivers.Poller, error) {
			r.port = p
			return r, nil
		}}}})
	runAsync(t, l)
	clk.waitParked(t)
	st, s := l.States()["dead"], l.Stats()
	probes := st.Polls - 1
	if st.State != bus.Down || st.Polls < 4 || r.requests != 3+int(probes) || r.cancels != int(probes) {
		t.Errorf("%+v: %d requests, %d cut; want 3 for the first poll and 1 per probe", st, r.requests, r.cancels)
	}
	if s.Probes != probes || s.Timeouts != st.Polls || s.Unanswered != uint64(r.requests) || s.Requests != uint64(r.requests) {
		t.Errorf("stats %+v; want every poll a timeout, %d probes", s, probes)
	}
}
