package gateway

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/cjt188"
	"github.com/townlink/townlink/drivers/dlt645"
	"github.com/townlink/townlink/drivers/modbus"
	"github.com/townlink/townlink/drivers/pulse"
	"github.com/townlink/townlink/gateway/bus"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/hardware"
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
		bd, err := serialDevice(d)
		if err != nil {
			return fmt.Errorf("%w: device %s: %w", ErrStart, d.ID, err)
		}
		byLine[d.Line] = append(byLine[d.Line], bd)
	}
	for _, d := range g.cfg.Devices {
		if d.Driver == config.DriverModbusTCP {
			td, err := g.modbusTCPDevice(d)
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
		lc := lc
		mode := lc.Mode()
		g.lines = append(g.lines, &bus.Line{
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
	}
	return nil
}

// serialDevice builds the poller factory of one serial device.
func serialDevice(d config.Device) (bus.Device, error) {
	bd := bus.Device{ID: d.ID, Interval: d.Interval}
	switch d.Driver {
	case config.DriverModbus:
		mc, err := modbusConfig(d)
		if err != nil {
			return bd, err
		}
		bd.New = func(p hardware.Port) (drivers.Poller, error) {
			return modbus.New(mc, modbus.NewRTU(p, d.Timeout, d.Retries))
		}
	case config.DriverDLT645, config.DriverDLT645v97:
		v := dlt645.V2007
		if d.Driver == config.DriverDLT645v97 {
			v = dlt645.V1997
		}
		mc := dlt645.Config{Device: d.ID, Address: d.Address, Version: v, Points: d.Read,
			Timeout: d.Timeout, Retries: retries(d.Retries), Class: drivers.Telemetry}
		if err := mc.Validate(); err != nil {
			return bd, err
		}
		bd.Gap = 20 * time.Millisecond // DL/T 645 §1.4: the meter may answer after Td ≥ 20 ms; 20 ms of silence keeps frames apart
		bd.New = func(p hardware.Port) (drivers.Poller, error) { return dlt645.New(mc, p) }
	case config.DriverCJT188:
		mc := cjt188.Config{Device: d.ID, Address: d.Address, MeterType: byte(d.MeterType), DIOrder: d.DIOrder,
			Timeout: d.Timeout, Retries: retries(d.Retries), Class: drivers.Telemetry}
		if err := mc.Validate(); err != nil {
			return bd, err
		}
		bd.Gap = 100 * time.Millisecond // CJ/T 188: ≥ 100 ms between frames
		bd.New = func(p hardware.Port) (drivers.Poller, error) { return cjt188.New(mc, p) }
	default:
		return bd, fmt.Errorf("driver %s is not wired in this build", d.Driver)
	}
	return bd, nil
}

func modbusConfig(d config.Device) (modbus.Config, error) {
	mc := modbus.Config{Device: d.ID, Unit: byte(d.Unit), Class: drivers.Telemetry}
	for _, p := range d.Points {
		t, err := modbus.ParseTable(string(p.Table))
		if err != nil {
			return mc, err
		}
		mp := modbus.Point{Name: p.Name, Table: t, Address: uint16(p.Address), Scale: p.Scale, Offset: p.Offset}
		if !p.Table.Bits() {
			if mp.Type, err = modbus.ParseType(string(p.Type)); err != nil {
				return mc, err
			}
			if mp.Order, err = modbus.ParseOrder(string(p.Order)); err != nil {
				return mc, err
			}
		}
		mc.Points = append(mc.Points, mp)
	}
	return mc, mc.Validate()
}

// pulseDevice builds a GPIO input or counter. Its counts are kept in
// data_dir/counters so they survive restarts and kill -9.
func (g *Gateway) pulseDevice(d config.Device) (drivers.Source, error) {
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

// retries maps the config's count (0 = none) to the drivers' convention
// (0 = default, negative = none).
func retries(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// sourceState is the state of a device that is not on a serial line.
func (g *Gateway) sourceState(id string) string {
	if st, ok := g.fieldState(id); ok {
		return st
	}
	for _, s := range g.sources {
		if s.id != id {
			continue
		}
		if st, ok := s.src.(interface{ State() string }); ok {
			return st.State()
		}
		return string(bus.OK)
	}
	return string(bus.Down)
}
