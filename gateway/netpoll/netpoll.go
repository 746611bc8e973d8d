// Package netpoll polls a device that has a network connection to itself
// (a Modbus TCP unit) at its interval, and reports its health. Unlike a
// serial line, such a device shares its connection with no other device,
// so it needs no line owner: it runs as a source of its own.
package netpoll

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/health"
)

// Driver is what a polled network device offers.
type Driver interface {
	drivers.Poller
	WritePoint(ctx context.Context, name string, v drivers.Value) error
}

// DownAfter is how many failed polls in a row make the device down.
const DownAfter = 3

// ErrConfig reports an invalid device.
var ErrConfig = errors.New("netpoll: invalid device")

// Device polls one network device.
type Device struct {
	id       string
	interval time.Duration
	drv      Driver
	conn     io.Closer // closed when Run ends (nil: nothing to close)

	mu     sync.Mutex
	fails  int // polls in a row without readings
	polls  int
	reads  uint64 // polls that gave readings
	errors uint64 // polls that failed
}

var _ drivers.Source = (*Device)(nil)

// New returns a device that polls drv every interval; conn (may be nil)
// is closed when Run ends. It does no I/O.
func New(id string, interval time.Duration, drv Driver, conn io.Closer) (*Device, error) {
	if id == "" || drv == nil || interval <= 0 {
		return nil, fmt.Errorf("%w: id %q, interval %v, driver set %t", ErrConfig, id, interval, drv != nil)
	}
	return &Device{id: id, interval: interval, drv: drv, conn: conn}, nil
}

// Run polls until ctx ends; emit queues each reading (a failure to queue
// is counted by the pipeline behind emit).
func (t *Device) Run(ctx context.Context, emit func(drivers.Reading) error) error {
	if t.conn != nil {
		defer t.conn.Close()
	}
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		rs, err := t.drv.Poll(ctx, nil)
		t.count(len(rs) > 0 || err == nil)
		for _, r := range rs {
			if r.Device == "" {
				r.Device = t.id
			}
			emit(r)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (t *Device) count(ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.polls++
	if ok {
		t.fails = 0
		t.reads++
		return
	}
	t.fails++
	t.errors++
}

// Read polls the device now, for the read command (the readings are not
// queued: the scheduled polls are).
func (t *Device) Read(ctx context.Context) ([]drivers.Reading, error) {
	rs, err := t.drv.Poll(ctx, nil)
	for i := range rs {
		if rs[i].Device == "" {
			rs[i].Device = t.id
		}
	}
	return rs, err
}

// Write sets an output, for the set command. The driver's transport
// serialises it with the scheduled polls.
func (t *Device) Write(ctx context.Context, point string, v drivers.Value) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return t.drv.WritePoint(ctx, point, v)
}

// State is the device's health: degraded until polled, down after
// DownAfter failed polls in a row.
func (t *Device) State() health.State {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.polls == 0:
		return health.Degraded
	case t.fails == 0:
		return health.Ok
	case t.fails < DownAfter:
		return health.Degraded
	}
	return health.Down
}

// Counts are the polls that gave readings and the polls that failed.
func (t *Device) Counts() (reads, errs uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reads, t.errors
}
