// Package supervise runs the gateway's long-lived parts (line owners,
// forwarders, sources, the status reporter) and restarts a part that stops
// before the gateway does, with back-off, so one failing part degrades one
// function instead of silently leaving the gateway running without it.
// A part that panics is recovered, logged with its stack and restarted.
package supervise

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"sync"
	"time"
)

// Options tune the restart back-off. Zero values take the defaults.
type Options struct {
	MinBackoff time.Duration // first restart delay (default 1s)
	MaxBackoff time.Duration // cap (default 1m)
	// Stable is how long a run must last for the back-off to reset
	// (default 1m).
	Stable time.Duration
}

func (o Options) withDefaults() Options {
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(time.Minute, o.MinBackoff)
	}
	if o.Stable <= 0 {
		o.Stable = time.Minute
	}
	return o
}

// Status is one part's record.
type Status struct {
	Running  bool
	Restarts uint64    // times the part stopped on its own and was started again
	LastErr  string    // why it last stopped ("" if it never did)
	Since    time.Time // when it last started or stopped
}

// Supervisor owns the goroutines of the parts it runs.
type Supervisor struct {
	log  *slog.Logger
	opts Options
	wg   sync.WaitGroup

	mu    sync.Mutex
	parts map[string]*Status
}

// New returns a supervisor; log nil discards.
func New(log *slog.Logger, o Options) *Supervisor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{log: log, opts: o.withDefaults(), parts: map[string]*Status{}}
}

// Go runs part until ctx ends, restarting it whenever it returns (with or
// without an error) or panics while ctx is still live.
func (s *Supervisor) Go(ctx context.Context, name string, part func(context.Context) error) {
	s.mu.Lock()
	if _, dup := s.parts[name]; dup {
		s.mu.Unlock()
		panic("supervise: part " + name + " started twice")
	}
	st := &Status{}
	s.parts[name] = st
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.loop(ctx, name, st, part)
	}()
}

func (s *Supervisor) loop(ctx context.Context, name string, st *Status, part func(context.Context) error) {
	backoff := s.opts.MinBackoff
	for {
		s.set(st, func(st *Status) { st.Running, st.Since = true, time.Now() })
		began := time.Now()
		err := run(ctx, part)
		if ctx.Err() != nil {
			s.set(st, func(st *Status) { st.Running, st.Since = false, time.Now() })
			return
		}
		if err == nil {
			err = fmt.Errorf("returned without an error")
		}
		if time.Since(began) >= s.opts.Stable {
			backoff = s.opts.MinBackoff
		}
		s.set(st, func(st *Status) {
			st.Running, st.Since, st.LastErr = false, time.Now(), err.Error()
			st.Restarts++
		})
		s.log.Error("part stopped; restarting it", "part", name, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.opts.MaxBackoff)
	}
}

// run calls part and turns a panic into an error.
func run(ctx context.Context, part func(context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return part(ctx)
}

func (s *Supervisor) set(st *Status, fn func(*Status)) {
	s.mu.Lock()
	fn(st)
	s.mu.Unlock()
}

// Wait waits for every part to return (after ctx ends).
func (s *Supervisor) Wait() { s.wg.Wait() }

// Parts returns a copy of every part's status, by name.
func (s *Supervisor) Parts() map[string]Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Status, len(s.parts))
	for name, st := range maps.All(s.parts) {
		out[name] = *st
	}
	return out
}
