package gateway

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/townlink/townlink/drivers/modbus"
	"github.com/townlink/townlink/drivers/pulse"
	"github.com/townlink/townlink/gateway/bus"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/health"
	"github.com/townlink/townlink/gateway/metrics"
	"github.com/townlink/townlink/gateway/netpoll"
	"github.com/townlink/townlink/hardware/gpio"
	"github.com/townlink/townlink/hardware/gpiosim"
	"github.com/townlink/townlink/hardware/serial"
)

// buildDevices turns the config's lines and devices into line owners with
// their pollers. Nothing is opened here: the line owner opens its port.
func (g *Gateway) buildDevices() error {
	byLine := map[string][]bus.Device{}
	for _, d := range g.cfg.Devices {
		if !d.Driver.Serial() {
			continue
		}
		bd, err := serialDevice(d, g.cfg.Gateway.Location)
		if err != nil {
			return fmt.Errorf("%w: device %s: %w", ErrStart, d.ID, err)
		}
		byLine[d.Line] = append(byLine[d.Line], bd)
	}
	for _, d := range g.cfg.Devices {
		if d.Driver == config.DriverModbusTCP {
			td, err := modbusTCPDevice(d)
			if err != nil {
				return fmt.Errorf("%w: device %s: %w", ErrStart, d.ID, err)
			}
			g.sources = append(g.sources, source{id: d.ID, src: td})
			continue
		}
		if d.Driver != config.DriverPulse {
			continue
		}
		src, err := g.pulseDevice(d)
		if err != nil {
			return fmt.Errorf("%w: device %s: %w", ErrStart, d.ID, err)
		}
		g.sources = append(g.sources, source{id: d.ID, src: src})
	}
	for _, lc := range g.cfg.Lines {
		mode := lc.Mode()
		l, err := bus.New(bus.Config{
			Name:    lc.Name,
			Mode:    mode,
			Gap:     lc.Gap,
			Devices: byLine[lc.Name],
			Emit:    g.pipe.Emit,
			Logger:  g.log.With("part", "bus"),
			Open: func() (bus.Port, error) {
				return serial.Open(lc.Device, mode)
			},
		})
		if err != nil {
			return fmt.Errorf("%w: %w", ErrStart, err)
		}
		g.lines = append(g.lines, l)
	}
	return nil
}

// serialDevice builds the poller factory of one serial device. The
// driver declares the silence it needs before a request (FrameGap); the
// line keeps it.
func serialDevice(d config.Device, loc *time.Location) (bus.Device, error) {
	newPoller, err := d.SerialPoller(loc)
	if err != nil {
		return bus.Device{}, err
	}
	return bus.Device{ID: d.ID, Interval: d.Interval, New: newPoller}, nil
}

// modbusConfig is the driver config of a modbus or modbus-tcp device
// (config.Device.ModbusConfig: the one conversion).
func modbusConfig(d config.Device) (modbus.Config, error) { return d.ModbusConfig() }

// pulseDevice builds a GPIO input or counter. Its counts are kept in
// data_dir/counters so they survive restarts and kill -9.
func (g *Gateway) pulseDevice(d config.Device) (*pulse.Device, error) {
	in, err := pulse.ParseInput(string(d.Input))
	if err != nil {
		return nil, err
	}
	line := d.PinLine
	open := func(context.Context) (gpio.Line, error) { return gpio.Open(line) }
	// pin: "sim:/path" (or "unix:/path") is a line simulated by townsim on a
	// Unix-domain socket: the demo and the tests, on machines without GPIO.
	if path, ok := gpiosim.SocketPath(line); ok {
		open = func(context.Context) (gpio.Line, error) { return gpiosim.Dial(path) }
	}
	pin := gpio.NewInput(d.Pin, open, gpio.InputConfig{Logger: g.log.With("device", d.ID)})
	return pulse.New(pulse.Config{
		Device: d.ID, Input: in, Debounce: d.Debounce, PerPulse: d.PerPulse, Quantity: d.Quantity,
		Start: d.Start, Interval: d.Interval, Store: pulse.FileStore(filepath.Join(g.cfg.Gateway.DataDir, "counters")),
		Logger: g.log.With("device", d.ID),
	}, pin)
}

// buildHealth registers every device with one health registry: the
// serial lines report their devices, Modbus TCP and pulse devices report
// themselves, the field broker reports recorders and kiosks. The status
// and the metrics read only the registry.
func (g *Gateway) buildHealth() {
	ids := make([]string, 0, len(g.cfg.Devices))
	for _, d := range g.cfg.Devices {
		ids = append(ids, d.ID)
	}
	reg := health.NewRegistry(ids...)
	for _, l := range g.lines {
		reg.Add(health.ReporterFunc(func() map[string]health.State {
			m := map[string]health.State{}
			for id, st := range l.States() {
				m[id] = busState(st.State)
			}
			return m
		}))
	}
	for _, s := range g.sources {
		switch src := s.src.(type) {
		case *netpoll.Device:
			reg.Device(s.id, src.State)
		case *pulse.Device:
			reg.Device(s.id, func() health.State { return pulseState(src.Health()) })
		}
	}
	reg.Add(health.ReporterFunc(g.fieldStates))
	g.health = reg
}

func busState(s bus.State) health.State {
	switch s {
	case bus.OK:
		return health.Ok
	case bus.Degraded:
		return health.Degraded
	}
	return health.Down
}

// pulseState is a pulse device's health: down while its pin is away (or
// after Run stopped on a pin error), degraded until it has read the pin
// and while its count cannot be saved.
func pulseState(h pulse.Health) health.State {
	switch {
	case h.Pin != nil:
		return health.Down
	case !h.Running || h.Store != nil:
		return health.Degraded
	}
	return health.Ok
}

// deviceCounts are the per-device reads and errors the devices count
// themselves. Serial devices are counted per line (bus.Stats) until the
// line owner counts per device.
func (g *Gateway) deviceCounts() map[string]metrics.DeviceCounts {
	m := map[string]metrics.DeviceCounts{}
	for _, l := range g.lines { // serial devices: their line owner polls them
		for id, st := range l.States() {
			m[id] = metrics.DeviceCounts{Reads: st.Polls - st.Failed, Errors: st.Failed}
		}
	}
	for _, s := range g.sources {
		switch src := s.src.(type) {
		case *netpoll.Device:
			reads, errs := src.Counts()
			m[s.id] = metrics.DeviceCounts{Reads: reads, Errors: errs}
		case *pulse.Device:
			h := src.Health()
			m[s.id] = metrics.DeviceCounts{Reads: h.Readings, Errors: h.Errors}
		}
	}
	if b := g.fieldBroker.Load(); b != nil {
		for id, d := range b.Stats().Devices {
			m[id] = metrics.DeviceCounts{Reads: d.Accepted, Errors: d.Malformed + d.TooLarge + d.ACLDenied + d.HandlerErrors}
		}
	}
	return m
}

// modbusTCPDevice builds a Modbus TCP device: polled at its interval over
// its own connection.
func modbusTCPDevice(d config.Device) (*netpoll.Device, error) {
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
	return netpoll.New(d.ID, d.Interval, dev, tr)
}
