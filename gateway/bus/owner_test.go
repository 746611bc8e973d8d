package bus_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/firmware-sim/dlt645sim"
	"github.com/townlink/townlink/gateway/bus"
	"github.com/townlink/townlink/hardware"
)

func TestInterFrameGap(t *testing.T) {
	for _, c := range []struct {
		mode hardware.Mode
		want time.Duration
	}{
		{hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}, 16041666 * time.Nanosecond}, // 3.5 × 11 bits / 2400
		{hardware.Mode{Baud: 9600}, 3645833 * time.Nanosecond},                               // 3.5 × 10 bits / 9600
		{hardware.Mode{Baud: 1200, Parity: hardware.ParityEven}, 32083333 * time.Nanosecond},
		{hardware.Mode{Baud: 38400, Parity: hardware.ParityEven}, 1750 * time.Microsecond}, // fixed above 19200
		{hardware.Mode{Baud: 115200}, 1750 * time.Microsecond},
	} {
		got := bus.InterFrameGap(c.mode)
		if d := got - c.want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("InterFrameGap(%v) = %v, want %v", c.mode, got, c.want)
		}
	}
}

// A dead meter behind a real driver with two retries: its first silent
// poll costs three requests (the driver's retries); from then on every try
// is a probe that costs exactly one request and one timeout (two more
// polls make it down, then one probe per back-off window), while the live
// meter keeps being read. Stats count all of it.
func TestDownDeviceIsProbedWithOneRequestPerWindow(t *testing.T) {
	live := dlt645sim.NewMeter(meterAddr(1), dlt645sim.V2007)
	live.Set("energy_kwh", "123456.78")
	dead := dlt645sim.NewMeter(meterAddr(2), dlt645sim.V2007)
	dead.SetFault(dlt645sim.Silent)
	sim := dlt645sim.NewLine(line2400, live, dead)
	st := newStamps()
	cfg := bus.Config{Name: "L1", Mode: line2400, Open: serveMeters(t, sim), Emit: st.emit,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond,
		Devices: []bus.Device{
			// The live meter's generous timeout keeps a loaded machine from
			// adding timeouts of its own to the counts below.
			meterDevice("live", meterAddr(1), 50*time.Millisecond, 2*time.Second, 2, 0),
			meterDevice("dead", meterAddr(2), 50*time.Millisecond, 150*time.Millisecond, 2, 0),
		}}
	l := newLine(t, cfg)
	runLine(t, l)

	waitUntil(t, "dead meter down", 20*time.Second, func() bool { return l.States()["dead"].State == bus.Down })
	down := l.States()["dead"]
	heard := sim.Stats().Faulted // requests the silent meter heard
	if down.Failed != 3 {
		t.Errorf("dead meter: %d failed polls counted, want 3", down.Failed)
	}
	if live := l.States()["live"]; live.Polls == 0 || live.Failed != 0 {
		t.Errorf("live meter: %d polls, %d failed; want some, none failed", live.Polls, live.Failed)
	}
	if down.Polls != 3 || down.Fails != 3 || heard != 3+1+1 {
		t.Errorf("before down: %d polls (%d failed), %d requests to the dead meter; want 3 polls, of 3 (1 + 2 retries), 1 and 1 requests", down.Polls, down.Fails, heard)
	}
	if down.Backoff <= 0 || !down.Next.After(time.Now().Add(-time.Second)) || down.LastOK != (time.Time{}) {
		t.Errorf("down device status %+v: want a back-off window, a next try and no last answer", down)
	}
	s0 := l.Stats()
	waitUntil(t, "5 probes", 30*time.Second, func() bool { return l.States()["dead"].Polls >= down.Polls+5 })
	s1 := l.Stats()
	after := l.States()["dead"]
	probes := after.Polls - down.Polls
	if got := sim.Stats().Faulted - heard; got != probes {
		t.Errorf("%d probes sent the dead meter %d requests; want exactly one each", probes, got)
	}
	if s1.Probes-s0.Probes != probes || s1.Probes != probes+2 {
		t.Errorf("Stats.Probes went up by %d, want %d", s1.Probes-s0.Probes, probes)
	}
	if after.State != bus.Down || after.Backoff != 400*time.Millisecond {
		t.Errorf("dead meter after probes: %+v; want down with the back-off at MaxBackoff", after)
	}
	if want := "did not answer"; !strings.Contains(after.LastErr, want) {
		t.Errorf("dead meter LastErr %q does not say %q", after.LastErr, want)
	}
	if got := st.value("live"); got != "123456.78" {
		t.Errorf("live meter energy_kwh = %q", got)
	}

	// Every poll is in exactly one result; requests, replies and silence
	// are counted.
	rs, err := l.PollNow(t.Context(), "live")
	if err != nil || len(rs) != 1 {
		t.Fatalf("PollNow = %v, %v", rs, err)
	}
	s := l.Stats()
	if sum := s.OK + s.Timeouts + s.FrameErrors + s.DeviceErrors + s.OtherErrors; sum != s.Transactions {
		t.Errorf("results add up to %d, transactions %d: %+v", sum, s.Transactions, s)
	}
	if s.Timeouts != 1+s.Probes || s.FrameErrors+s.DeviceErrors+s.OtherErrors != 0 {
		t.Errorf("timeouts %d, want 1 + %d probes: %+v", s.Timeouts, s.Probes, s)
	}
	// Each request is 20 bytes (4 FE + 16), each reply 24 (4 FE + 20).
	if s.BytesOut != 20*s.Requests || s.BytesIn != 24*s.OK {
		t.Errorf("bytes out %d for %d requests, in %d for %d answers: %+v", s.BytesOut, s.Requests, s.BytesIn, s.OK, s)
	}
	if s.Unanswered != 3+s.Probes || s.Requests != s.OK+s.Unanswered {
		t.Errorf("unanswered %d (want 3 + %d probes), requests %d (want OK + unanswered): %+v", s.Unanswered, s.Probes, s.Requests, s)
	}
	if s.Jobs != 1 || s.Busy <= 0 || s.Silence <= 0 || s.Busy > s.Uptime || !s.PortOpen || s.Reopens != 0 {
		t.Errorf("stats %+v", s)
	}
	if u := s.Utilisation(); u <= 0 || u > 1 {
		t.Errorf("utilisation %v", u)
	}

	// It comes back: the next probe gets an answer and the meter is ok.
	dead.SetFault(dlt645sim.None)
	waitUntil(t, "dead meter back", 20*time.Second, func() bool { return l.States()["dead"].State == bus.OK })
	if b := l.States()["dead"]; b.Backoff != 0 || b.Fails != 0 || b.LastOK.IsZero() {
		t.Errorf("recovered meter %+v", b)
	}
}

// The silence before a request is kept from the last byte on the wire:
// every request is written at least the device's gap after the last reply
// byte was read (a lower bound, not a speed limit).
func TestGapIsKeptBetweenFrames(t *testing.T) {
	const gap = 40 * time.Millisecond
	var ms []*dlt645sim.Meter
	for i := range 3 {
		m := dlt645sim.NewMeter(meterAddr(i+1), dlt645sim.V2007)
		m.Set("energy_kwh", fmt.Sprintf("%d.00", i))
		ms = append(ms, m)
	}
	sim := dlt645sim.NewLine(line2400, ms...)
	open := serveMeters(t, sim)
	rec := &recordingPort{}
	st := newStamps()
	cfg := bus.Config{Name: "L1", Mode: line2400, Emit: st.emit, Open: func() (bus.Port, error) {
		p, err := open()
		rec.Port = p
		return rec, err
	}}
	for i := range 3 {
		cfg.Devices = append(cfg.Devices, meterDevice(fmt.Sprintf("m%d", i), meterAddr(i+1), 0, 500*time.Millisecond, 0, gap))
	}
	l := newLine(t, cfg)
	runLine(t, l)
	st.waitTotal(t, 30, 30*time.Second)
	s := l.Stats()
	// Without wire time the simulator answers at once, so nearly all of a
	// poll is the silence kept before its request.
	if s.Requests < 30 || s.Silence < time.Duration(s.Requests-1)*gap/2 {
		t.Errorf("%d requests kept only %v of silence in all (gap %v each)", s.Requests, s.Silence, gap)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.silences) < 29 {
		t.Fatalf("only %d requests after a reply", len(rec.silences))
	}
	for i, d := range rec.silences {
		if d < gap {
			t.Fatalf("request %d written %v after the last reply byte; want at least %v", i+1, d, gap)
		}
	}
}

// recordingPort notes, for every write, how long after the last byte read
// it began.
type recordingPort struct {
	bus.Port
	mu       sync.Mutex
	lastRead time.Time
	silences []time.Duration
}

func (p *recordingPort) Write(b []byte) (int, error) {
	now := time.Now()
	p.mu.Lock()
	if !p.lastRead.IsZero() {
		p.silences = append(p.silences, now.Sub(p.lastRead))
	}
	p.mu.Unlock()
	return p.Port.Write(b)
}

func (p *recordingPort) Read(b []byte) (int, error) {
	n, err := p.Port.Read(b)
	if n > 0 {
		p.mu.Lock()
		p.lastRead = time.Now()
		p.mu.Unlock()
	}
	return n, err
}
