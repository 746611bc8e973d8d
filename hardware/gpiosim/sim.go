package gpiosim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/townlink/townlink/hardware/gpio"
)

// ErrBadEdge: a simulated line was driven wrongly (an edge back in time,
// an edge that does not change the level, a Push after End).
var ErrBadEdge = errors.New("gpiosim: bad simulated edge")

// DefaultCapacity is the number of queued edges after which Sim.Push
// waits for the reader.
const DefaultCapacity = 4096

// simStart is the virtual clock's default start: 2026-01-01 00:00 UTC.
func simStart() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

// Config configures a Sim.
type Config struct {
	// Virtual runs the line on a simulated clock: it starts at Start and
	// moves only to the time of the edge a reader takes or to the
	// deadline a reader waits for. Otherwise the clock is the wall clock.
	Virtual bool
	// Start of the virtual clock; the zero time means 2026-01-01 00:00 UTC.
	Start time.Time
	// Level is the line's level before the first edge.
	Level gpio.Level
	// Capacity is the number of queued edges after which Push waits; 0
	// means DefaultCapacity.
	Capacity int
}

// Sim is a simulated GPIO input line: the wire, its level and its clock.
// A test or firmware-sim pushes edges with exact timestamps; a reader
// requests the line with Open (one request at a time, like the kernel)
// and takes the edges in time order. Sim is safe for concurrent use.
type Sim struct {
	name     string
	virtual  bool
	capacity int

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	now     time.Time     // virtual clock
	level   gpio.Level    // level after the last delivered edge
	queue   []gpio.Edge   // pending edges, time order, alternating levels
	head    int
	tail    gpio.Level // level after the last queued edge
	last    time.Time  // time of the last queued edge
	ended   bool
	gen     int   // request generation; Break bumps it
	brk     error // why the current generation broke
	openErr error
	busy    bool
	opens   int
}

// New returns a simulated line called name.
func New(name string, c Config) *Sim {
	if c.Capacity <= 0 {
		c.Capacity = DefaultCapacity
	}
	if c.Start.IsZero() {
		c.Start = simStart()
	}
	return &Sim{
		name:     name,
		virtual:  c.Virtual,
		capacity: c.Capacity,
		changed:  make(chan struct{}),
		now:      c.Start,
		level:    c.Level,
		tail:     c.Level,
		last:     c.Start,
	}
}

// String is the line's name.
func (s *Sim) String() string { return s.name }

// notify wakes every waiter. Called with s.mu held.
func (s *Sim) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Now is the line's clock: the virtual time, or the wall clock.
func (s *Sim) Now() time.Time {
	if !s.virtual {
		return time.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

// Level is the physical level now: the level after the last edge whose
// time has come, delivered or not.
func (s *Sim) Level() gpio.Level {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.levelLocked()
}

func (s *Sim) levelLocked() gpio.Level {
	if s.virtual {
		return s.level
	}
	l, now := s.level, time.Now()
	for _, e := range s.queue[s.head:] {
		if e.Time.After(now) {
			break
		}
		l = e.Level
	}
	return l
}

// Push queues edges. Each must change the level (a rising edge after a
// falling one) and come no earlier than the previous one, and, on a
// virtual clock, no earlier than the clock. Push waits while Capacity
// edges are queued; it fails with ErrBadEdge for a bad edge or after End.
func (s *Sim) Push(ctx context.Context, edges ...gpio.Edge) error {
	for _, e := range edges {
		if err := s.push(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sim) push(ctx context.Context, e gpio.Edge) error {
	s.mu.Lock()
	for {
		if s.ended {
			s.mu.Unlock()
			return fmt.Errorf("%w: %s: push after End", ErrBadEdge, s.name)
		}
		if len(s.queue)-s.head < s.capacity {
			break
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	switch {
	case e.Level == s.tail:
		return fmt.Errorf("%w: %s: edge at %s to %s, but the line is already %s", ErrBadEdge, s.name, e.Time.Format(time.RFC3339Nano), e.Level, s.tail)
	case e.Time.Before(s.last):
		return fmt.Errorf("%w: %s: edge at %s is before the previous one at %s", ErrBadEdge, s.name, e.Time.Format(time.RFC3339Nano), s.last.Format(time.RFC3339Nano))
	case s.virtual && e.Time.Before(s.now):
		return fmt.Errorf("%w: %s: edge at %s is before the virtual clock %s", ErrBadEdge, s.name, e.Time.Format(time.RFC3339Nano), s.now.Format(time.RFC3339Nano))
	}
	if s.head > 0 && s.head >= len(s.queue)/2 {
		s.queue = append(s.queue[:0], s.queue[s.head:]...)
		s.head = 0
	}
	s.queue = append(s.queue, e)
	s.tail, s.last = e.Level, e.Time
	s.notify()
	return nil
}

// Set pushes one edge to level at the line's current time (a no-op when
// the line is already at level).
func (s *Sim) Set(ctx context.Context, level gpio.Level) error {
	s.mu.Lock()
	t := s.now
	if !s.virtual {
		t = time.Now()
	}
	if t.Before(s.last) {
		t = s.last
	}
	same := s.tail == level
	s.mu.Unlock()
	if same {
		return nil
	}
	return s.Push(ctx, gpio.Edge{Level: level, Time: t})
}

// End says no more edges will come: from now on a reader waiting with a
// deadline on a virtual clock gets it at once instead of waiting for the
// next Push.
func (s *Sim) End() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
	s.notify()
}

// Pending is the number of queued edges not yet taken by a reader.
func (s *Sim) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) - s.head
}

// Break makes the current request fail, as when the GPIO chip goes away:
// its next call returns an error wrapping gpio.ErrLine and err. A new request
// (Open) works again unless SetOpenError says otherwise.
func (s *Sim) Break(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	s.brk = err
	s.notify()
}

// SetOpenError makes Open fail with err (nil: Open works again).
func (s *Sim) SetOpenError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.openErr = err
}

// Opens is the number of successful Open calls.
func (s *Sim) Opens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens
}

// Open requests the line. Only one request may be open at a time. On a
// wall clock, edges whose time passed while no request was open are
// applied to the level but not delivered (nobody was watching).
func (s *Sim) Open(context.Context) (gpio.Line, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.openErr != nil {
		return nil, fmt.Errorf("%w: %s: request: %w", gpio.ErrLine, s.name, s.openErr)
	}
	if s.busy {
		return nil, fmt.Errorf("%w: %s: request: line busy", gpio.ErrLine, s.name)
	}
	if !s.virtual {
		now := time.Now()
		for s.head < len(s.queue) && !s.queue[s.head].Time.After(now) {
			s.level = s.queue[s.head].Level
			s.head++
		}
	}
	s.busy = true
	s.opens++
	return &simLine{s: s, gen: s.gen}, nil
}

// simLine is one request of a Sim.
type simLine struct {
	s      *Sim
	gen    int
	closed bool
}

var _ gpio.Line = (*simLine)(nil)

// check reports why the request cannot be used. Called with s.mu held.
func (l *simLine) check() error {
	if l.closed {
		return fmt.Errorf("%w: %s", gpio.ErrClosed, l.s.name)
	}
	if l.gen != l.s.gen {
		return fmt.Errorf("%w: %s: %w", gpio.ErrLine, l.s.name, l.s.brk)
	}
	return nil
}

func (l *simLine) Read() (gpio.Level, error) {
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := l.check(); err != nil {
		return gpio.Low, err
	}
	return s.levelLocked(), nil
}

func (l *simLine) Now() time.Time { return l.s.Now() }

func (l *simLine) Close() error {
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	s.busy = false
	s.notify()
	return nil
}

// timeout is the error for a passed deadline.
func (l *simLine) timeout(deadline time.Time) error {
	return fmt.Errorf("gpiosim: %s: no edge by %s: %w", l.s.name, deadline.Format(time.RFC3339Nano), os.ErrDeadlineExceeded)
}

func (l *simLine) WaitEdge(ctx context.Context, deadline time.Time) (gpio.Edge, error) {
	s := l.s
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		if err := l.check(); err != nil {
			s.mu.Unlock()
			return gpio.Edge{}, err
		}
		if err := ctx.Err(); err != nil {
			s.mu.Unlock()
			return gpio.Edge{}, err
		}
		var wake time.Duration = -1 // wall-clock wait; -1: until notified
		if s.virtual {
			if s.head < len(s.queue) {
				e := s.queue[s.head]
				if deadline.IsZero() || !e.Time.After(deadline) {
					s.take(e)
					s.mu.Unlock()
					return e, nil
				}
				s.advance(deadline)
				e = gpio.Edge{Level: s.level, Time: s.now}
				s.mu.Unlock()
				return e, l.timeout(deadline)
			}
			if s.ended && !deadline.IsZero() {
				s.advance(deadline)
				e := gpio.Edge{Level: s.level, Time: s.now}
				s.mu.Unlock()
				return e, l.timeout(deadline)
			}
		} else {
			now := time.Now()
			if s.head < len(s.queue) {
				e := s.queue[s.head]
				if !e.Time.After(now) && (deadline.IsZero() || !e.Time.After(deadline)) {
					s.take(e)
					s.mu.Unlock()
					return e, nil
				}
				wake = e.Time.Sub(now)
			}
			if !deadline.IsZero() {
				if !now.Before(deadline) {
					e := gpio.Edge{Level: s.levelLocked(), Time: now}
					s.mu.Unlock()
					return e, l.timeout(deadline)
				}
				if d := deadline.Sub(now); wake < 0 || d < wake {
					wake = d
				}
			}
		}
		ch := s.changed
		s.mu.Unlock()
		var tc <-chan time.Time
		if wake >= 0 {
			if timer == nil {
				timer = time.NewTimer(wake)
			} else {
				timer.Reset(wake)
			}
			tc = timer.C
		}
		select {
		case <-ctx.Done():
		case <-ch:
		case <-tc:
		}
	}
}

// take delivers the queued edge e (the head). Called with s.mu held.
func (s *Sim) take(e gpio.Edge) {
	s.head++
	s.level = e.Level
	if s.virtual && e.Time.After(s.now) {
		s.now = e.Time
	}
	s.notify()
}

// advance moves the virtual clock forward to t. Called with s.mu held.
func (s *Sim) advance(t time.Time) {
	if t.After(s.now) {
		s.now = t
	}
}
