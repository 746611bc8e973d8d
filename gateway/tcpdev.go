package gateway

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/modbus"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/health"
	"github.com/townlink/townlink/gateway/metrics"
)

// tcpDevice polls a Modbus TCP device at its interval. Unlike a serial
// line, a TCP device has the connection to itself, so it runs as a source
// of its own.
type tcpDevice struct {
	id       string
	interval time.Duration
	dev      *modbus.Device
	tr       *modbus.TCP

	mu     sync.Mutex
	fails  int // polls in a row without readings
	polls  int
	reads  uint64 // polls that gave readings
	errors uint64 // polls that failed
}

func (g *Gateway) modbusTCPDevice(d config.Device) (*tcpDevice, error) {
	mc, err := modbusConfig(d)
	if err != nil {
		return nil, err
	}
	host := d.Host
	var dialer net.Dialer
	tr := modbus.NewTCP(func(ctx context.Context) (net.Conn, error) { return dialer.DialContext(ctx, "tcp", host) }, d.Timeout)
	dev, err := modbus.New(mc, tr)
	if err != nil {
		return nil, err
	}
	return &tcpDevice{id: d.ID, interval: d.Interval, dev: dev, tr: tr}, nil
}

// Run polls until ctx ends.
func (t *tcpDevice) Run(ctx context.Context, emit func(drivers.Reading) error) error {
	defer t.tr.Close()
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		rs, err := t.dev.Poll(ctx, nil)
		t.mu.Lock()
		t.polls++
		if err != nil && len(rs) == 0 {
			t.fails++
			t.errors++
		} else {
			t.fails = 0
			t.reads++
		}
		t.mu.Unlock()
		for _, r := range rs {
			if r.Device == "" {
				r.Device = t.id
			}
			emit(r) // a failure to queue is logged and counted by the pipeline
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Read polls the device now, for the read command (the readings are not
// queued: the scheduled polls are).
func (t *tcpDevice) Read(ctx context.Context) ([]drivers.Reading, error) {
	rs, err := t.dev.Poll(ctx, nil)
	for i := range rs {
		if rs[i].Device == "" {
			rs[i].Device = t.id
		}
	}
	return rs, err
}

// Write sets an output, for the set command. The transport serialises it
// with the scheduled polls.
func (t *tcpDevice) Write(ctx context.Context, point string, v drivers.Value) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return t.dev.WritePoint(ctx, point, v)
}

// State is the device's health: degraded until polled, down after three
// failed polls in a row.
func (t *tcpDevice) State() health.State {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.polls == 0:
		return health.Degraded
	case t.fails == 0:
		return health.Ok
	case t.fails < 3:
		return health.Degraded
	}
	return health.Down
}

// Counts are the device's polls for the metrics.
func (t *tcpDevice) Counts() metrics.DeviceCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return metrics.DeviceCounts{Reads: t.reads, Errors: t.errors}
}
