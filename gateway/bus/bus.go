// Package bus is the line owner: one goroutine per serial line polls that
// line's devices in turn, whatever their protocol. It keeps inter-frame
// gaps, gives each device its own interval, backs a silent device off so it
// cannot stall the others, tracks each device's state (ok, degraded, down)
// and counts per-line figures (transactions, errors by kind, utilisation).
//
// Scheduling: each device has its own interval and keeps its phase (a late
// poll does not shift the following ones; a slot that is missed entirely
// is skipped, never made up in a burst). When several devices are due, the
// one due longest goes first; when the next one is already due, the owner
// does not sleep. Interval 0 means "poll continuously": the device is due
// again as soon as it has been polled, and devices with interval 0 take
// turns.
//
// Silence: before every request the owner keeps the line quiet for
// max(InterFrameGap(Mode), Line.Gap, Device.Gap) after the last byte on the
// wire, whoever sent it (the end of a request is computed from Mode, since
// a serial port's write returns before its bytes have left).
//
// A silent device: after DownAfter polls in a row without an answer it is
// down. A down device is tried once per back-off window (doubling from
// max(Interval, MinBackoff) up to MaxBackoff, tried at a random point in
// the second half of each window), and such a try is a probe: the owner
// lets at most one request go unanswered in it, whatever the driver's
// retries, so a dead device costs at most one timeout per window. A device
// whose last poll got not one byte back (all its retries unanswered) is
// polled the same way until it answers, so a meter that dies costs its
// retries once, not DownAfter times.
package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/hardware"
)

// State of a device as the status message reports it.
type State string

// Device states.
const (
	OK       State = "ok"       // last poll answered fully
	Degraded State = "degraded" // last poll failed or answered in part
	Down     State = "down"     // several polls in a row failed, or the line is closed
)

// Port is an open serial line the bus can close and reopen.
type Port interface {
	hardware.Port
	io.Closer
}

// Device is one device on the line.
type Device struct {
	ID string
	// Interval between polls; 0 means poll continuously (see the package
	// documentation).
	Interval time.Duration
	// Gap is the silence this device's protocol needs before a request
	// (the line keeps the longest of this, Line.Gap and InterFrameGap).
	// Per device so that it can be configured: DL/T 645 gateway practice
	// is 50 ms, but the standard's timing only justifies 20 ms (see
	// BenchmarkLineOwner32Meters).
	Gap time.Duration
	// New builds the device's poller on the line's (gap-keeping) port. It
	// is called again after the line is reopened.
	New func(p hardware.Port) (drivers.Poller, error)
}

// Emit takes readings and returns nil once they are durably queued.
type Emit func(ctx context.Context, rs []drivers.Reading) error

// Line owns one serial line.
type Line struct {
	Name    string
	Mode    hardware.Mode
	Open    func() (Port, error)
	Devices []Device
	Emit    Emit
	Logger  *slog.Logger
	// DownAfter consecutive failed polls mark a device down (default 3).
	DownAfter int
	// MaxBackoff bounds how rarely a down device is tried (default 5m).
	MaxBackoff time.Duration
	// MinBackoff is the first back-off window of a down device whose
	// interval is shorter (default 1s).
	MinBackoff time.Duration
	// Gap is the least silence between frames on this line (0 or less than
	// InterFrameGap(Mode): InterFrameGap(Mode)).
	Gap time.Duration

	jobs chan job
	once sync.Once

	mu    sync.Mutex
	devs  []*devState
	stats Stats
	start time.Time
}

type job struct {
	fn   func(ctx context.Context, p hardware.Port) error
	done chan error
}

type devState struct {
	Device
	poller  drivers.Poller
	next    time.Time
	fails   int
	state   State
	lastErr error
	backoff time.Duration
	polls   uint64
	lastOK  time.Time
	mute    bool // the last poll got no byte back at all
}

// Stats are a line's figures since it started. Every poll counts once in
// Transactions and once in exactly one of OK, Timeouts, FrameErrors,
// DeviceErrors and OtherErrors (a poll cut short because the line is
// stopping counts in none).
type Stats struct {
	Transactions uint64 // polls attempted
	OK           uint64 // polls answered fully
	Timeouts     uint64 // polls that got no answer (probes included)
	FrameErrors  uint64 // bad checksum, cut-off, garbage
	DeviceErrors uint64 // exception or abnormal replies
	OtherErrors  uint64
	// Probes are polls allowed one unanswered request only: of a down
	// device, or of one whose last poll got no byte back.
	Probes uint64

	Requests   uint64 // frames written to the line: every request, retry and Do job's write
	Unanswered uint64 // requests after which not one byte came back (broadcasts included)
	BytesOut   uint64
	BytesIn    uint64
	Jobs       uint64 // Do and PollNow calls run on the line
	Reopens    uint64 // times the port failed and was reopened

	Busy    time.Duration // time spent in polls and jobs (silence kept inside them included)
	Silence time.Duration // time spent keeping inter-frame silence before requests
	Uptime  time.Duration
	// PortOpen says whether the port is open now.
	PortOpen bool
}

// Utilisation is the fraction of time the line was busy.
func (s Stats) Utilisation() float64 {
	if s.Uptime <= 0 {
		return 0
	}
	return float64(s.Busy) / float64(s.Uptime)
}

func (l *Line) init() {
	l.once.Do(func() {
		l.jobs = make(chan job)
		if l.DownAfter <= 0 {
			l.DownAfter = 3
		}
		if l.MaxBackoff <= 0 {
			l.MaxBackoff = 5 * time.Minute
		}
		if l.MinBackoff <= 0 {
			l.MinBackoff = time.Second
		}
		if l.Logger == nil {
			l.Logger = slog.New(slog.DiscardHandler)
		}
		l.Logger = l.Logger.With("line", l.Name)
		l.mu.Lock()
		l.devs = make([]*devState, len(l.Devices))
		for i, d := range l.Devices {
			l.devs[i] = &devState{Device: d, state: Degraded, lastErr: errNotPolled}
		}
		l.mu.Unlock()
	})
}

var errNotPolled = errors.New("not polled yet")

// ErrLine reports that the line could not serve a request.
var ErrLine = errors.New("bus: line not available")

// Run owns the line until ctx ends: it opens the port (retrying with
// back-off if it is missing), polls every device at its interval and runs
// jobs submitted with Do between polls.
func (l *Line) Run(ctx context.Context) error {
	l.init()
	l.mu.Lock()
	l.start = time.Now()
	l.mu.Unlock()
	retry := time.Second
	for {
		port, err := l.Open()
		if err != nil {
			l.setAll(Down, err)
			l.Logger.Error("cannot open serial line; devices marked down, retrying", "err", err, "retry_in", retry)
			if !l.wait(ctx, retry) {
				return ctx.Err()
			}
			retry = min(retry*2, time.Minute)
			continue
		}
		retry = time.Second
		l.setPortOpen(true)
		err = l.serve(ctx, port)
		port.Close()
		l.setPortOpen(false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.mu.Lock()
		l.stats.Reopens++
		l.mu.Unlock()
		l.setAll(Down, err)
		l.Logger.Error("serial line failed; reopening", "err", err)
		if !l.wait(ctx, retry) {
			return ctx.Err()
		}
	}
}

// wait sleeps d while still serving jobs (with the line unavailable).
func (l *Line) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case j := <-l.jobs:
			j.done <- fmt.Errorf("%w: %s is not open", ErrLine, l.Name)
		}
	}
}

func (l *Line) serve(ctx context.Context, raw Port) error {
	gp := &gapPort{Port: raw, l: l, mode: l.Mode, gap: max(l.Gap, InterFrameGap(l.Mode))}
	now := time.Now()
	l.mu.Lock()
	for i, d := range l.devs {
		p, err := d.New(gp)
		if err != nil {
			d.poller, d.state, d.lastErr = nil, Down, err
			l.Logger.Error("device cannot be set up", "device", d.ID, "err", err)
			continue
		}
		d.poller = p
		// Spread first polls over the first interval so devices with one
		// interval do not all fire at once.
		d.next = now.Add(time.Duration(i) * min(d.Interval, time.Second) / time.Duration(len(l.devs)))
	}
	l.mu.Unlock()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var readings []drivers.Reading
	for {
		d := l.nextDue()
		if d == nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case j := <-l.jobs:
				j.done <- l.runJob(ctx, gp, j)
			}
			continue
		}
		if wait := time.Until(d.next); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case j := <-l.jobs:
				timer.Stop() // Go ≥ 1.23: no stale tick after Stop
				j.done <- l.runJob(ctx, gp, j)
				continue
			case <-timer.C:
			}
		} else {
			// Already due: no sleep, but jobs and a stop still go first.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case j := <-l.jobs:
				j.done <- l.runJob(ctx, gp, j)
				continue
			default:
			}
		}
		var err error
		readings, err = l.poll(ctx, gp, d, readings[:0])
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		if isPortFailure(err) {
			return err
		}
	}
}

func (l *Line) runJob(ctx context.Context, gp *gapPort, j job) error {
	t0 := time.Now()
	gp.begin(0, nil)
	err := j.fn(ctx, gp)
	gp.end()
	l.mu.Lock()
	l.stats.Jobs++
	l.stats.Busy += time.Since(t0)
	l.mu.Unlock()
	return err
}

// InterFrameGap is the silence a line at mode m needs between two frames:
// 3.5 characters, and at least 1.75 ms above 19200 bit/s (Modbus over
// Serial Line §2.5.1.1, protocols.md §4.1).
func InterFrameGap(m hardware.Mode) time.Duration {
	g := 35 * m.CharTime() / 10
	if m.Baud > 19200 {
		g = max(g, 1750*time.Microsecond)
	}
	return g
}

// isPortFailure reports errors after which the port must be reopened.
func isPortFailure(err error) bool {
	if err == nil {
		return false
	}
	var pe *portError
	return errors.As(err, &pe)
}

func (l *Line) nextDue() *devState {
	l.mu.Lock()
	defer l.mu.Unlock()
	var best *devState
	for _, d := range l.devs {
		if d.poller == nil {
			continue
		}
		if best == nil || d.next.Before(best.next) {
			best = d
		}
	}
	return best
}

// errProbe ends a probe (see Stats.Probes) once one request went unanswered.
var errProbe = errors.New("bus: probe of a silent device: its one request went unanswered")

func (l *Line) poll(ctx context.Context, gp *gapPort, d *devState, buf []drivers.Reading) ([]drivers.Reading, error) {
	l.mu.Lock()
	probe := d.state == Down || d.mute
	l.mu.Unlock()
	pctx := ctx
	var cut func()
	if probe {
		var cancel context.CancelFunc
		pctx, cancel = context.WithCancel(ctx)
		defer cancel()
		cut = cancel
	}
	t0 := time.Now()
	gp.begin(d.Gap, cut)
	rs, err := d.poller.Poll(pctx, buf)
	cutShort, heard := gp.end()
	busy := time.Since(t0)
	if cutShort && ctx.Err() == nil {
		// The driver saw its context cancelled; what happened is that the
		// device did not answer.
		err = fmt.Errorf("%w: %s: %w", drivers.ErrTimeout, d.ID, errProbe)
	}
	for i := range rs {
		if rs[i].Device == "" {
			rs[i].Device = d.ID
		}
		if rs[i].Time.IsZero() {
			rs[i].Time = t0
		}
	}
	var emitErr error
	if len(rs) > 0 && l.Emit != nil {
		emitErr = l.Emit(ctx, rs)
		if emitErr != nil {
			l.Logger.Error("readings not queued", "device", d.ID, "err", emitErr, "readings", len(rs))
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Transactions++
	l.stats.Busy += busy
	d.polls++
	d.mute = err != nil && len(rs) == 0 && !heard
	if probe {
		l.stats.Probes++
	}
	switch {
	case err == nil:
		l.stats.OK++
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
	case errors.Is(err, drivers.ErrTimeout):
		l.stats.Timeouts++
	case errors.Is(err, drivers.ErrFrame):
		l.stats.FrameErrors++
	case isDeviceError(err):
		l.stats.DeviceErrors++
	default:
		l.stats.OtherErrors++
	}
	prev := d.state
	switch {
	case err == nil:
		d.fails, d.backoff, d.state, d.lastErr, d.lastOK = 0, 0, OK, nil, time.Now()
	case len(rs) > 0:
		// Answered in part: the device is alive.
		d.fails, d.backoff, d.state, d.lastErr, d.lastOK = 0, 0, Degraded, err, time.Now()
	default:
		d.fails++
		d.lastErr = err
		d.state = Degraded
		if d.fails >= l.DownAfter {
			d.state = Down
		}
	}
	if d.state != prev {
		level := slog.LevelWarn
		if d.state == OK {
			level = slog.LevelInfo
		}
		l.Logger.Log(ctx, level, "device state changed", "device", d.ID, "from", prev, "to", d.state, "err", err)
	}
	d.next = l.schedule(d, time.Now())
	return rs, errors.Join(err, emitErr)
}

// schedule returns when d is next due after a poll that ended at now.
// Called with l.mu held.
func (l *Line) schedule(d *devState, now time.Time) time.Time {
	if d.state == Down {
		// A silent device is tried ever more rarely, with jitter, so it
		// costs at most one timeout (a probe) per back-off window.
		if d.backoff == 0 {
			d.backoff = max(d.Interval, l.MinBackoff)
		}
		d.backoff = min(d.backoff*2, l.MaxBackoff)
		return now.Add(d.backoff/2 + rand.N(d.backoff/2+1))
	}
	if d.Interval <= 0 {
		return now // continuous: due again at once, behind those waiting longer
	}
	// Keep the device's phase; never burst to catch up.
	next := d.next.Add(d.Interval)
	if next.Before(now) {
		next = now.Add(d.Interval - (now.Sub(d.next) % d.Interval))
	}
	return next
}

// deviceError is implemented by protocol exception errors that know they
// came from a live device (Modbus exceptions, DL/T 645 abnormal replies).
func isDeviceError(err error) bool {
	var de interface{ DeviceAnswered() bool }
	return errors.As(err, &de) && de.DeviceAnswered()
}

// Do runs fn on the line's goroutine between polls, with the line's port:
// the only safe way to talk to a device outside its schedule.
func (l *Line) Do(ctx context.Context, fn func(ctx context.Context, p hardware.Port) error) error {
	l.init()
	j := job{fn: fn, done: make(chan error, 1)}
	select {
	case l.jobs <- j:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// PollNow polls one device at once and returns its readings (they are
// also queued as usual).
func (l *Line) PollNow(ctx context.Context, id string) ([]drivers.Reading, error) {
	var out []drivers.Reading
	err := l.Do(ctx, func(ctx context.Context, p hardware.Port) error {
		l.mu.Lock()
		var d *devState
		for _, x := range l.devs {
			if x.ID == id {
				d = x
			}
		}
		l.mu.Unlock()
		if d == nil || d.poller == nil {
			return fmt.Errorf("%w: device %s is not set up on %s", ErrLine, id, l.Name)
		}
		gp, ok := p.(*gapPort)
		if !ok {
			return fmt.Errorf("%w: %s: job port is %T", ErrLine, l.Name, p)
		}
		var err error
		out, err = l.poll(ctx, gp, d, nil)
		return err
	})
	return out, err
}

// Has reports whether the device is on this line.
func (l *Line) Has(id string) bool {
	for _, d := range l.Devices {
		if d.ID == id {
			return true
		}
	}
	return false
}

// DeviceStatus is one device's state, last error and schedule.
type DeviceStatus struct {
	State   State
	LastErr string
	Polls   uint64    // polls (and probes) since the line started
	Fails   int       // polls in a row without an answer
	LastOK  time.Time // end of the last poll that got an answer; zero if none
	Next    time.Time // when the device is next due
	// Backoff is the current back-off window of a down device (0 when
	// the device is not backed off).
	Backoff time.Duration
}

// States returns every device's state.
func (l *Line) States() map[string]DeviceStatus {
	l.init()
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string]DeviceStatus, len(l.devs))
	for _, d := range l.devs {
		s := DeviceStatus{State: d.state, Polls: d.polls, Fails: d.fails, LastOK: d.lastOK, Next: d.next, Backoff: d.backoff}
		if d.lastErr != nil {
			s.LastErr = d.lastErr.Error()
		}
		m[d.ID] = s
	}
	return m
}

// Stats returns the line's figures.
func (l *Line) Stats() Stats {
	l.init()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats
	if !l.start.IsZero() {
		s.Uptime = time.Since(l.start)
	}
	return s
}

func (l *Line) setAll(s State, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range l.devs {
		d.state, d.lastErr, d.poller = s, err, nil
	}
}

func (l *Line) setPortOpen(open bool) {
	l.mu.Lock()
	l.stats.PortOpen = open
	l.mu.Unlock()
}

// gapPort keeps the silence a line needs between frames, counts the
// line's traffic, limits a probe to one unanswered request, and turns I/O
// failures of the port itself into portError so the owner reopens it. Only
// the line's goroutine uses it.
type gapPort struct {
	Port
	l    *Line
	mode hardware.Mode
	gap  time.Duration // the line's: max(InterFrameGap(mode), Line.Gap)

	gapDev     time.Duration // the device's being polled
	quiet      time.Time     // when the last byte was (or will have been) on the wire
	unanswered bool          // a request went out and no byte has come back since
	cut        func()        // non-nil during a probe: ends it
	wasCut     bool
	heard      bool // a byte came back during this poll
}

type portError struct{ err error }

func (e *portError) Error() string { return e.err.Error() }
func (e *portError) Unwrap() error { return e.err }

// begin starts a poll (cut non-nil: a probe) or a job.
func (g *gapPort) begin(gapDev time.Duration, cut func()) {
	g.gapDev, g.cut, g.wasCut, g.unanswered, g.heard = gapDev, cut, false, false, false
}

// end finishes a poll or job and reports whether a probe was cut short and
// whether any byte came back.
func (g *gapPort) end() (cut, heard bool) {
	g.countUnanswered()
	cut, heard = g.wasCut, g.heard
	g.gapDev, g.cut, g.wasCut = 0, nil, false
	return cut, heard
}

func (g *gapPort) countUnanswered() {
	if g.unanswered {
		g.unanswered = false
		g.l.mu.Lock()
		g.l.stats.Unanswered++
		g.l.mu.Unlock()
	}
}

func (g *gapPort) Write(b []byte) (int, error) {
	if g.cut != nil && g.unanswered {
		// A probe: the device already left one request unanswered.
		g.wasCut = true
		g.cut()
		return 0, errProbe
	}
	g.countUnanswered()
	var waited time.Duration
	if !g.quiet.IsZero() {
		if wait := max(g.gap, g.gapDev) - time.Since(g.quiet); wait > 0 {
			time.Sleep(wait)
			waited = wait
		}
	}
	n, err := g.Port.Write(b)
	// The write returns once the bytes are queued; the line is busy until
	// the last one has left.
	g.quiet = time.Now().Add(g.mode.WireTime(n))
	g.unanswered = n > 0
	g.l.mu.Lock()
	g.l.stats.Requests++
	g.l.stats.BytesOut += uint64(n)
	g.l.stats.Silence += waited
	g.l.mu.Unlock()
	if err != nil {
		return n, &portError{err}
	}
	return n, nil
}

func (g *gapPort) Read(b []byte) (int, error) {
	n, err := g.Port.Read(b)
	if n > 0 {
		g.quiet = time.Now()
		g.unanswered, g.heard = false, true
		g.l.mu.Lock()
		g.l.stats.BytesIn += uint64(n)
		g.l.mu.Unlock()
	}
	if err != nil && !isTimeout(err) {
		return n, &portError{err}
	}
	return n, err
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
