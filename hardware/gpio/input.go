package gpio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Reconnect defaults.
const (
	DefaultBackoff    = 100 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
)

// Opener requests a line: Open for a real line; hardware/gpiosim's
// Sim.Open or Dial for a simulated one.
type Opener func(ctx context.Context) (Line, error)

// InputConfig configures an Input. The zero value is usable.
type InputConfig struct {
	// Backoff is the first pause before requesting a failed line again;
	// it doubles up to MaxBackoff. 0 means the defaults.
	Backoff, MaxBackoff time.Duration
	// Clock tells the time while no line is open (a deadline can pass
	// while the line is away); nil means time.Now. Give a virtual
	// gpiosim.Sim's Now here.
	Clock func() time.Time
	// Logger receives line errors and reconnects; nil discards.
	Logger *slog.Logger
}

// Input is a named input line that survives line errors: it requests the
// line through its Opener when first used and again after an error, with
// a growing pause between attempts. Its Level and NextEdge use standard
// types only, so it satisfies drivers/pulse.Pin.
//
// An Input is read by one goroutine; Close may be called from another.
type Input struct {
	name string
	open Opener
	cfg  InputConfig
	log  *slog.Logger

	mu      sync.Mutex
	line    Line
	closed  bool
	level   Level // last level reported by Level or NextEdge
	known   bool
	pending *Edge // a change found when the line came back
	errs    int   // line errors seen
	fails   int   // consecutive failures, for the back-off
	away    error // the error keeping the line away; nil while it works
}

// NewInput returns an Input for the line called name. It does no I/O.
func NewInput(name string, open Opener, c InputConfig) *Input {
	if c.Backoff <= 0 {
		c.Backoff = DefaultBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MaxBackoff < c.Backoff {
		c.MaxBackoff = c.Backoff
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Input{name: name, open: open, cfg: c, log: log.With("line", name)}
}

// String is the line's name.
func (in *Input) String() string { return in.name }

// LineErrors is the number of line errors the Input has recovered from
// (or is recovering from).
func (in *Input) LineErrors() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.errs
}

// Err is the error that keeps the line away while the Input requests it
// again (wrapping ErrLine), or ErrClosed after Close; nil while the line
// works or before it was first requested. Health reports read it from
// another goroutine.
func (in *Input) Err() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return fmt.Errorf("%w: %s", ErrClosed, in.name)
	}
	return in.away
}

// Close releases the line; later calls fail with ErrClosed.
func (in *Input) Close() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.closed = true
	if in.line == nil {
		return nil
	}
	err := in.line.Close()
	in.line = nil
	return err
}

// Level returns the current level (true: high) and the time on the line's
// clock, requesting the line first if needed.
func (in *Input) Level(ctx context.Context) (high bool, now time.Time, err error) {
	for {
		l, err := in.ensure(ctx, time.Time{})
		if err != nil {
			return false, time.Time{}, err
		}
		lvl, err := l.Read()
		if err == nil {
			in.mu.Lock()
			in.level, in.known, in.pending, in.fails = lvl, true, nil, 0
			in.mu.Unlock()
			return bool(lvl), l.Now(), nil
		}
		if err := in.failed(l, err); err != nil {
			return false, time.Time{}, err
		}
	}
}

// NextEdge returns the next edge: the level after it (true: rising) and
// its time. It waits until ctx ends or the line's clock reaches deadline
// (zero: no deadline); a passed deadline returns the current level and
// time with an error satisfying errors.Is(err, os.ErrDeadlineExceeded).
// A line error is not returned: the line is requested again, and a level
// change found then is returned as an edge at the time the line came back.
func (in *Input) NextEdge(ctx context.Context, deadline time.Time) (high bool, at time.Time, err error) {
	for {
		l, err := in.ensure(ctx, deadline)
		if err != nil {
			return bool(in.lastLevel()), in.cfg.Clock(), err
		}
		in.mu.Lock()
		if p := in.pending; p != nil {
			in.pending = nil
			in.level = p.Level
			in.mu.Unlock()
			return bool(p.Level), p.Time, nil
		}
		in.mu.Unlock()
		e, err := l.WaitEdge(ctx, deadline)
		switch {
		case err == nil:
			in.mu.Lock()
			in.level, in.known, in.fails = e.Level, true, 0
			in.mu.Unlock()
			return bool(e.Level), e.Time, nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			in.mu.Lock()
			in.fails = 0
			in.mu.Unlock()
			return bool(e.Level), e.Time, err
		case ctx.Err() != nil:
			return bool(e.Level), e.Time, err
		}
		if err := in.failed(l, err); err != nil {
			return bool(in.lastLevel()), in.cfg.Clock(), err
		}
	}
}

func (in *Input) lastLevel() Level {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.level
}

// failed drops line l after err. It returns an error only when the Input
// is closed.
func (in *Input) failed(l Line, err error) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return fmt.Errorf("%w: %s", ErrClosed, in.name)
	}
	in.errs++
	in.fails++
	in.away = fmt.Errorf("%w: %s: %w", ErrLine, in.name, err)
	in.log.Warn("gpio line error; requesting it again", "err", err)
	if in.line == l {
		in.line = nil
	}
	if cerr := l.Close(); cerr != nil {
		in.log.Debug("closing failed line", "err", cerr)
	}
	return nil
}

// ensure returns the open line, requesting it (with back-off) if needed.
// It gives up when ctx ends, when the Input is closed, or, with a
// non-zero deadline, when the clock passes it (os.ErrDeadlineExceeded).
func (in *Input) ensure(ctx context.Context, deadline time.Time) (Line, error) {
	for {
		in.mu.Lock()
		if in.closed {
			in.mu.Unlock()
			return nil, fmt.Errorf("%w: %s", ErrClosed, in.name)
		}
		if in.line != nil {
			l := in.line
			in.mu.Unlock()
			return l, nil
		}
		fails := in.fails
		in.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if fails > 0 {
			wait := in.backoff(fails)
			if !deadline.IsZero() {
				left := deadline.Sub(in.cfg.Clock())
				if left <= 0 {
					return nil, fmt.Errorf("gpio: %s: line away at deadline %s: %w", in.name, deadline.Format(time.RFC3339Nano), os.ErrDeadlineExceeded)
				}
				wait = min(wait, left)
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
		l, err := in.open(ctx)
		if err == nil {
			var lvl Level
			if lvl, err = l.Read(); err != nil {
				_ = l.Close()
			} else {
				in.mu.Lock()
				if in.closed {
					in.mu.Unlock()
					_ = l.Close()
					return nil, fmt.Errorf("%w: %s", ErrClosed, in.name)
				}
				if in.known && lvl != in.level {
					in.pending = &Edge{Level: lvl, Time: l.Now()}
				}
				in.line, in.away = l, nil
				in.mu.Unlock()
				if fails > 0 {
					in.log.Info("gpio line requested again", "failures", fails, "level", lvl)
				}
				return l, nil
			}
		}
		in.mu.Lock()
		in.fails++
		in.errs++
		in.away = fmt.Errorf("%w: %s: %w", ErrLine, in.name, err)
		in.mu.Unlock()
		if fails%10 == 0 {
			in.log.Warn("gpio line request failed", "err", err, "failures", fails+1)
		}
	}
}

// backoff is the pause after n consecutive failures (n ≥ 1).
func (in *Input) backoff(n int) time.Duration {
	d := in.cfg.Backoff
	for i := 1; i < n && d < in.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, in.cfg.MaxBackoff)
}
