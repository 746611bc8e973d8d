// Package bus is the line owner: one goroutine per serial line polls that
// line's devices in turn, whatever their protocol. It keeps inter-frame
// gaps, gives each device its own interval, backs a silent device off so it
// cannot stall the others, tracks each device's state (ok, degraded, down)
// and counts per-line figures (transactions, errors by kind, utilisation).
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
	ID       string
	Interval time.Duration
	// Gap is the silence this device's protocol needs before a request,
	// on top of the line's own (3.5 characters).
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
	// Gap is extra silence between frames (0: 3.5 characters).
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
}

// Stats are a line's figures since it started.
type Stats struct {
	Transactions uint64 // polls attempted
	OK           uint64
	Timeouts     uint64
	FrameErrors  uint64 // bad checksum, cut-off, garbage
	DeviceErrors uint64 // exception or abnormal replies
	OtherErrors  uint64
	Busy         time.Duration // time spent in polls
	Uptime       time.Duration
	PortOpen     bool
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
	gap := l.Gap
	if g := 35 * l.Mode.CharTime() / 10; gap < g {
		gap = g
	}
	gp := &gapPort{Port: raw, gap: gap}
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
	timer := time.NewTimer(0)
	defer timer.Stop()
	var readings []drivers.Reading
	for {
		d := l.nextDue()
		if d == nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case j := <-l.jobs:
				j.done <- j.fn(ctx, gp)
			}
			continue
		}
		timer.Reset(time.Until(d.next))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case j := <-l.jobs:
			if !timer.Stop() {
				<-timer.C
			}
			j.done <- j.fn(ctx, gp)
			continue
		case <-timer.C:
		}
		gp.gapDev = d.Gap
		var err error
		readings, err = l.poll(ctx, d, readings[:0])
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		if isPortFailure(err) {
			return err
		}
	}
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

func (l *Line) poll(ctx context.Context, d *devState, buf []drivers.Reading) ([]drivers.Reading, error) {
	t0 := time.Now()
	rs, err := d.poller.Poll(ctx, buf)
	busy := time.Since(t0)
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
	switch {
	case err == nil:
		l.stats.OK++
	case errors.Is(err, drivers.ErrTimeout):
		l.stats.Timeouts++
	case errors.Is(err, drivers.ErrFrame):
		l.stats.FrameErrors++
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
	case isDeviceError(err):
		l.stats.DeviceErrors++
	default:
		l.stats.OtherErrors++
	}
	prev := d.state
	switch {
	case err == nil:
		d.fails, d.backoff, d.state, d.lastErr = 0, 0, OK, nil
	case len(rs) > 0:
		// Answered in part: the device is alive.
		d.fails, d.backoff, d.state, d.lastErr = 0, 0, Degraded, err
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
	// Schedule: keep the device's phase; never burst to catch up.
	next := d.next.Add(d.Interval)
	if now := time.Now(); next.Before(now) {
		next = now.Add(d.Interval - (now.Sub(d.next) % d.Interval))
	}
	if d.state == Down {
		// A silent device is tried ever more rarely, with jitter, so it
		// costs at most one timeout per back-off window.
		if d.backoff == 0 {
			d.backoff = d.Interval
		}
		d.backoff = min(d.backoff*2, l.MaxBackoff)
		next = time.Now().Add(d.backoff/2 + rand.N(d.backoff/2+1))
	}
	d.next = next
	return rs, errors.Join(err, emitErr)
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
	err := l.Do(ctx, func(ctx context.Context, _ hardware.Port) error {
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
		var err error
		out, err = l.poll(ctx, d, nil)
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

// DeviceStatus is one device's state and last error.
type DeviceStatus struct {
	State   State
	LastErr string
}

// States returns every device's state.
func (l *Line) States() map[string]DeviceStatus {
	l.init()
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string]DeviceStatus, len(l.devs))
	for _, d := range l.devs {
		s := DeviceStatus{State: d.state}
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

// gapPort keeps the silence a line needs between frames and turns I/O
// failures of the port itself into portError so the owner reopens it.
type gapPort struct {
	Port
	gap    time.Duration
	gapDev time.Duration
	last   time.Time
}

type portError struct{ err error }

func (e *portError) Error() string { return e.err.Error() }
func (e *portError) Unwrap() error { return e.err }

func (g *gapPort) Write(b []byte) (int, error) {
	if !g.last.IsZero() {
		if wait := max(g.gap, g.gapDev) - time.Since(g.last); wait > 0 {
			time.Sleep(wait)
		}
	}
	n, err := g.Port.Write(b)
	g.last = time.Now()
	if err != nil {
		return n, &portError{err}
	}
	return n, nil
}

func (g *gapPort) Read(b []byte) (int, error) {
	n, err := g.Port.Read(b)
	if n > 0 {
		g.last = time.Now()
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
