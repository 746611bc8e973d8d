package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/townlink/townlink/drivers"
)

// Line owns one serial line. Build it with New; run it with Run.
type Line struct {
	cfg     Config
	log     *slog.Logger
	clock   Clock
	backoff backoffPolicy
	jobs    chan job
	stats   counters

	mu    sync.Mutex // guards devs' pollers and health, and sched
	devs  []*device
	sched *schedule
}

// device is one device's run-time part.
type device struct {
	Device
	poller drivers.Poller // nil while the line is closed or New failed
	gap    time.Duration  // the driver's FrameGap
	health
}

// New checks cfg and returns the line's owner. It does no I/O and keeps
// its own copy of cfg.
func New(cfg Config) (*Line, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	l := &Line{
		cfg:     cfg,
		log:     cfg.Logger.With("line", cfg.Name),
		clock:   cfg.Clock,
		backoff: backoffPolicy{min: cfg.MinBackoff, max: cfg.MaxBackoff, jitter: cfg.Jitter},
		jobs:    make(chan job),
		devs:    make([]*device, len(cfg.Devices)),
	}
	intervals := make([]time.Duration, len(cfg.Devices))
	for i, d := range cfg.Devices {
		l.devs[i] = &device{Device: d, health: newHealth()}
		intervals[i] = d.Interval
	}
	l.sched = newSchedule(intervals)
	return l, nil
}

// Name is the line's name.
func (l *Line) Name() string { return l.cfg.Name }

// Has reports whether the device is on this line.
func (l *Line) Has(id string) bool {
	for _, d := range l.devs {
		if d.ID == id {
			return true
		}
	}
	return false
}

// Run owns the line until ctx ends: it opens the port (retrying with
// back-off if it is missing), polls every device at its interval and runs
// jobs submitted with Do between polls. It returns ctx's error.
func (l *Line) Run(ctx context.Context) error {
	l.stats.started(l.clock.Now())
	retry := time.Second
	for {
		port, err := l.cfg.Open()
		if err != nil {
			l.closed(err)
			l.log.Error("cannot open serial line; devices marked down, retrying", "err", err, "retry_in", retry)
			if !l.wait(ctx, retry) {
				return ctx.Err()
			}
			retry = min(retry*2, time.Minute)
			continue
		}
		retry = time.Second
		l.stats.portOpen(true)
		err = l.serveThenClose(ctx, port)
		l.stats.portOpen(false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.stats.reopened()
		l.closed(err)
		l.log.Error("serial line failed; reopening", "err", err)
		if !l.wait(ctx, retry) {
			return ctx.Err()
		}
	}
}

// serveThenClose serves the open port and closes it, also when a driver
// panics (the supervisor restarts the line, which must be able to open
// the port again: a Port holds the device exclusively).
func (l *Line) serveThenClose(ctx context.Context, port Port) error {
	defer port.Close()
	return l.serve(ctx, port)
}

// closed marks every device down with err and drops its poller.
func (l *Line) closed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sched.stop()
	for _, d := range l.devs {
		d.poller = nil
		d.lineDown(err)
	}
}

// wait sleeps d while still answering jobs (with the line unavailable).
func (l *Line) wait(ctx context.Context, d time.Duration) bool {
	t := l.clock.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C():
			return true
		case j := <-l.jobs:
			j.done <- fmt.Errorf("%w: %s is not open", ErrLine, l.cfg.Name)
		}
	}
}

// setUp builds every device's poller on the gap-keeping port and starts
// the schedule. It returns the longest gap a device declared.
func (l *Line) setUp(gp *gapPort) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	active := make([]bool, len(l.devs))
	var longest time.Duration
	for i, d := range l.devs {
		p, err := d.New(gp)
		if err != nil {
			d.poller = nil
			d.lineDown(err)
			l.log.Error("device cannot be set up", "device", d.ID, "err", err)
			continue
		}
		d.poller, d.gap, active[i] = p, 0, true
		if g, ok := p.(drivers.FrameGapper); ok {
			d.gap = min(max(g.FrameGap(), 0), maxGap)
		}
		longest = max(longest, d.gap)
	}
	l.sched.start(l.clock.Now(), active)
	return longest
}

// serve polls the devices on an open port until ctx ends or the port
// fails.
func (l *Line) serve(ctx context.Context, raw Port) error {
	gp := &gapPort{Port: raw, clock: l.clock, stats: &l.stats, mode: l.cfg.Mode, gap: max(l.cfg.Gap, InterFrameGap(l.cfg.Mode))}
	jobGap := l.setUp(gp)
	var timer Timer // armed only to wait for a device due later
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var readings []drivers.Reading
	for {
		i, err := l.await(ctx, &timer, gp, jobGap)
		if err != nil {
			return err
		}
		if i < 0 {
			continue // a job ran
		}
		readings, err = l.poll(ctx, gp, l.devs[i], readings[:0])
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		if isPortFailure(err) {
			return err
		}
	}
}

// await waits until a device is due and returns its index, or runs one
// job that comes first and returns -1. A stop and jobs go before a device
// that is already due.
func (l *Line) await(ctx context.Context, timer *Timer, gp *gapPort, jobGap time.Duration) (int, error) {
	l.mu.Lock()
	i, at, ok := l.sched.due()
	l.mu.Unlock()
	var tick <-chan time.Time // nil: nothing due, wait for a job or the end
	if ok {
		wait := at.Sub(l.clock.Now())
		if wait <= 0 {
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case j := <-l.jobs:
				j.done <- l.runJob(ctx, gp, jobGap, j)
				return -1, nil
			default:
				return i, nil
			}
		}
		if *timer == nil {
			*timer = l.clock.NewTimer(wait)
		} else {
			(*timer).Reset(wait)
		}
		tick = (*timer).C()
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case j := <-l.jobs:
		if *timer != nil {
			(*timer).Stop()
		}
		j.done <- l.runJob(ctx, gp, jobGap, j)
		return -1, nil
	case <-tick:
		return i, nil
	}
}

// poll polls d once (a probe when its health says so), hands its readings
// to Emit and records the outcome.
func (l *Line) poll(ctx context.Context, gp *gapPort, d *device, buf []drivers.Reading) ([]drivers.Reading, error) {
	l.mu.Lock()
	probe := d.probe()
	l.mu.Unlock()
	pctx := ctx
	var cut func()
	if probe {
		var cancel context.CancelFunc
		pctx, cancel = context.WithCancel(ctx)
		defer cancel()
		cut = cancel
	}
	t0 := l.clock.Now()
	gp.begin(d.gap, cut)
	rs, err := d.poller.Poll(pctx, buf)
	cutShort, heard := gp.end()
	end := l.clock.Now()
	if cutShort && ctx.Err() == nil {
		// The driver saw its context cancelled; what happened is that the
		// device did not answer.
		err = fmt.Errorf("%w: %s: %w", drivers.ErrTimeout, d.ID, errProbe)
	}
	stamp(rs, d.ID, t0)
	emitErr := l.emit(ctx, d.ID, rs)
	l.stats.poll(Classify(err), probe, end.Sub(t0))
	l.settle(ctx, d, err, len(rs), heard, end)
	return rs, errors.Join(err, emitErr)
}

// stamp names the device and the time on readings that lack them.
func stamp(rs []drivers.Reading, id string, t time.Time) {
	for i := range rs {
		if rs[i].Device == "" {
			rs[i].Device = id
		}
		if rs[i].Time.IsZero() {
			rs[i].Time = t
		}
	}
}

func (l *Line) emit(ctx context.Context, id string, rs []drivers.Reading) error {
	if len(rs) == 0 || l.cfg.Emit == nil {
		return nil
	}
	err := l.cfg.Emit(ctx, rs)
	if err != nil {
		l.log.Error("readings not queued", "device", id, "err", err, "readings", len(rs))
	}
	return err
}

// settle records a poll's outcome in d's health and schedules its next
// poll.
func (l *Line) settle(ctx context.Context, d *device, err error, n int, heard bool, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := l.index(d)
	prev := d.record(err, n, heard, now, l.cfg.DownAfter)
	if d.state != prev {
		level := slog.LevelWarn
		if d.state == OK {
			level = slog.LevelInfo
		}
		l.log.Log(ctx, level, "device state changed", "device", d.ID, "from", prev, "to", d.state, "err", err)
	}
	if d.state == Down {
		l.sched.set(i, l.backoff.next(&d.health, d.Interval, now))
		return
	}
	l.sched.set(i, l.sched.next(i, now))
}

// index returns d's position. Called with l.mu held.
func (l *Line) index(d *device) int {
	for i, x := range l.devs {
		if x == d {
			return i
		}
	}
	panic("bus: device not on its line")
}

// States returns every device's state.
func (l *Line) States() map[string]DeviceStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string]DeviceStatus, len(l.devs))
	for i, d := range l.devs {
		m[d.ID] = d.status(l.sched.at(i))
	}
	return m
}

// Stats returns the line's figures.
func (l *Line) Stats() Stats { return l.stats.snapshot(l.clock.Now()) }
