package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/hardware"
)

// job is work run on the line's goroutine between polls.
type job struct {
	fn   func(ctx context.Context, p hardware.Port) error
	done chan error
}

// runJob runs j on the gap-keeping port, keeping gap (the longest any
// device on the line declared) before each of its requests.
func (l *Line) runJob(ctx context.Context, gp *gapPort, gap time.Duration, j job) error {
	t0 := l.clock.Now()
	gp.begin(gap, nil)
	err := j.fn(ctx, gp)
	gp.end()
	l.stats.job(l.clock.Now().Sub(t0))
	return err
}

// Do runs fn on the line's goroutine between polls, with the line's port:
// the only safe way to talk to a device outside its schedule.
func (l *Line) Do(ctx context.Context, fn func(ctx context.Context, p hardware.Port) error) error {
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
		var d *device
		for _, x := range l.devs {
			if x.ID == id && x.poller != nil {
				d = x
			}
		}
		l.mu.Unlock()
		if d == nil {
			return fmt.Errorf("%w: device %s is not set up on %s", ErrLine, id, l.cfg.Name)
		}
		gp, ok := p.(*gapPort)
		if !ok {
			return fmt.Errorf("%w: %s: job port is %T", ErrLine, l.cfg.Name, p)
		}
		var err error
		out, err = l.poll(ctx, gp, d, nil)
		return err
	})
	return out, err
}
