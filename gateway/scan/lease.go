package scan

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/townlink/townlink/hardware"
)

// Do runs fn on a line's owner between two polls, with the owner's port
// (the shape of bus.Line.Do).
type Do func(ctx context.Context, fn func(ctx context.Context, p hardware.Port) error) error

// DefaultSlice is how long a Leased port keeps the line before it gives
// it back to the owner's polls.
const DefaultSlice = time.Second

// ErrLeaseClosed: the Leased port was used after Close.
var ErrLeaseClosed = errors.New("scan: leased port closed")

// Leased is a Port borrowed from a running line owner one job at a time:
// it takes the owner's port with a job (Do) when it is first used and
// gives it back at the start of a request once it has held it for slice,
// so that the owner's polls go on between the probes of a scan that takes
// minutes. Run a scan on it from a goroutine of its own:
//
//	p := scan.Leased(ctx, line.Do, scan.DefaultSlice)
//	found, err := scan.Run(ctx, p, line.Mode, opts, progress)
//	p.Close()
type LeasedPort struct {
	ctx   context.Context
	do    Do
	slice time.Duration

	mu      sync.Mutex
	p       hardware.Port // the owner's port while a lease is held
	release chan struct{}
	done    chan error
	since   time.Time
	timeout time.Duration
	timed   bool
	closed  bool
}

var _ hardware.Port = (*LeasedPort)(nil)

// Leased returns a port on the line owner reached through do; slice <= 0
// means DefaultSlice.
func Leased(ctx context.Context, do Do, slice time.Duration) *LeasedPort {
	if slice <= 0 {
		slice = DefaultSlice
	}
	return &LeasedPort{ctx: ctx, do: do, slice: slice}
}

// acquire takes the line with a job that holds it until released.
func (l *LeasedPort) acquire() error {
	if l.closed {
		return ErrLeaseClosed
	}
	if l.p != nil {
		return nil
	}
	got := make(chan hardware.Port, 1)
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- l.do(l.ctx, func(ctx context.Context, p hardware.Port) error {
			got <- p
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		})
	}()
	select {
	case p := <-got:
		l.p, l.release, l.done, l.since = p, release, done, time.Now()
		if l.timed {
			return p.SetReadTimeout(l.timeout)
		}
		return nil
	case err := <-done:
		if err == nil {
			err = errors.New("job ended without the port")
		}
		return fmt.Errorf("scan: line owner: %w", err)
	}
}

// giveBack ends the job holding the line.
func (l *LeasedPort) giveBack() {
	if l.p == nil {
		return
	}
	close(l.release)
	<-l.done
	l.p = nil
}

// turn gives the line back to the owner if the lease is old, then takes
// it again: called at the start of each request.
func (l *LeasedPort) turn() error {
	if l.p != nil && time.Since(l.since) >= l.slice {
		l.giveBack()
	}
	return l.acquire()
}

// Write sends b, first letting the owner poll if the lease is old.
func (l *LeasedPort) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.turn(); err != nil {
		return 0, err
	}
	return l.p.Write(b)
}

// Flush drops unread input, first letting the owner poll if the lease is
// old.
func (l *LeasedPort) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.turn(); err != nil {
		return err
	}
	return l.p.Flush()
}

// Read reads from the owner's port.
func (l *LeasedPort) Read(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.acquire(); err != nil {
		return 0, err
	}
	return l.p.Read(b)
}

// SetReadTimeout sets the read timeout, kept across leases.
func (l *LeasedPort) SetReadTimeout(d time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timeout, l.timed = d, true
	if l.p != nil {
		return l.p.SetReadTimeout(d)
	}
	return nil
}

// Close gives the line back for good.
func (l *LeasedPort) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.giveBack()
	l.closed = true
	return nil
}
