package config

import (
	"fmt"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/cjt188"
	"github.com/townlink/townlink/drivers/dlt645"
	"github.com/townlink/townlink/drivers/modbus"
	"github.com/townlink/townlink/hardware"
)

// Derived is a value the config chose for a key the file left out, and
// what it was derived from: `townlink check` prints them, so nothing is
// chosen silently. Every derived default follows one rule: it is computed
// from what the file does say (the interval, the line's speed) and the
// driver's own facts, it always fits them, and only a value the user wrote
// can be refused.
type Derived struct {
	Device string // device id
	Key    string // e.g. "timeout"
	Value  string // e.g. "150ms"
	From   string // e.g. "derived: interval 200ms, 9600 8N1"
}

func (d Derived) String() string {
	return fmt.Sprintf("%s: %s %s (%s)", d.Device, d.Key, d.Value, d.From)
}

// DefaultTimeoutShare is the part of a device's interval a derived
// timeout may take at most: a poll must fit in its interval.
const DefaultTimeoutShare = 3.0 / 4

// driverTimeout returns a driver's default timeout, and the shortest one
// that can work for dv on a line at m (0 when the line has no wire time,
// as for Modbus TCP).
func driverTimeout(dv *Device, m hardware.Mode) (def, floor time.Duration) {
	switch dv.Driver {
	case DriverModbus:
		floor = modbus.Turnaround
		if mc, err := dv.ModbusConfig(); err == nil {
			floor = mc.MinTimeout(m)
		}
		return modbus.DefaultTimeout, floor
	case DriverModbusTCP:
		return modbus.DefaultTimeout, modbus.Turnaround
	case DriverDLT645, DriverDLT645v97:
		return dlt645.DefaultTimeout, dlt645.MinTimeout(m)
	case DriverCJT188:
		return cjt188.DefaultTimeout, cjt188.MinTimeout(m)
	}
	return 0, 0
}

// driverRetries is a polled driver's default retry count.
func driverRetries(d Driver) int {
	switch d {
	case DriverDLT645, DriverDLT645v97:
		return dlt645.DefaultRetries
	case DriverCJT188:
		return cjt188.DefaultRetries
	}
	return modbus.DefaultRetries
}

// DriverGap is the silence a serial driver's device needs before each of
// its requests, as the driver declares it (0: the line's t3.5 only).
func DriverGap(d Driver) time.Duration {
	switch d {
	case DriverDLT645, DriverDLT645v97:
		return dlt645.DefaultGap
	case DriverCJT188:
		return cjt188.DefaultGap
	}
	return 0
}

// deriveTimeout fills in a polled device's timeout when the file has
// none: the driver's default, shortened to DefaultTimeoutShare of the
// interval, but never below what a reply needs on the wire at the line's
// speed. It returns the floor, for the check that it fits the interval.
func (c *Config) deriveTimeout(dv *Device) time.Duration {
	var m hardware.Mode
	from := "no serial line"
	if l := c.line(dv.Line); l != nil {
		m = l.Mode()
		from = m.String()
	}
	def, floor := driverTimeout(dv, m)
	if dv.has.set("timeout") {
		return floor
	}
	share := time.Duration(float64(dv.Interval) * DefaultTimeoutShare).Round(time.Millisecond)
	t := min(def, share)
	why := fmt.Sprintf("%s default", dv.Driver)
	if t < def {
		why = fmt.Sprintf("derived: interval %s, %s", dv.Interval, from)
	}
	if t < floor {
		t = floor.Round(time.Millisecond) + time.Millisecond
		why = fmt.Sprintf("derived: the longest reply at %s", from)
	}
	dv.Timeout = t
	c.derive(dv, "timeout", t.String(), why)
	return floor
}

func (c *Config) derive(dv *Device, key, value, from string) {
	c.Derived = append(c.Derived, Derived{Device: dv.ID, Key: key, Value: value, From: from})
}

func (c *Config) line(name string) *Line {
	for i := range c.Lines {
		if c.Lines[i].Name == name {
			return &c.Lines[i]
		}
	}
	return nil
}

// ModbusConfig is the driver config of a modbus or modbus-tcp device: the
// one conversion of its points.
func (dv *Device) ModbusConfig() (modbus.Config, error) {
	mc := modbus.Config{Device: dv.ID, Unit: byte(dv.Unit), Class: drivers.Telemetry}
	for _, p := range dv.Points {
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

// DLT645Config is the driver config of a dlt645 or dlt645-1997 device,
// with the gateway's time zone for the meter clock.
func (dv *Device) DLT645Config(loc *time.Location) dlt645.Config {
	v := dlt645.V2007
	if dv.Driver == DriverDLT645v97 {
		v = dlt645.V1997
	}
	return dlt645.Config{Device: dv.ID, Address: dv.Address, Version: v, Points: dv.Read,
		Timeout: dv.Timeout, Retries: dv.Retries, Location: loc, Class: drivers.Telemetry}
}

// CJT188Config is the driver config of a cjt188 device, with the gateway's
// time zone for the meter clock.
func (dv *Device) CJT188Config(loc *time.Location) cjt188.Config {
	return cjt188.Config{Device: dv.ID, Address: dv.Address, MeterType: byte(dv.MeterType), DIOrder: dv.DIOrder,
		Timeout: dv.Timeout, Retries: dv.Retries, Location: loc, Class: drivers.Telemetry}
}

// SerialPoller is the validated driver factory of a serial device (modbus,
// dlt645, dlt645-1997, cjt188) on a port: the one place a config entry
// becomes a driver, for the line owner, the scanner and townlink read.
// A zero Timeout takes the driver's default.
func (dv *Device) SerialPoller(loc *time.Location) (func(hardware.Port) (drivers.Poller, error), error) {
	switch dv.Driver {
	case DriverModbus:
		mc, err := dv.ModbusConfig()
		if err != nil {
			return nil, err
		}
		timeout, retries := dv.Timeout, dv.Retries
		return func(p hardware.Port) (drivers.Poller, error) {
			return modbus.New(mc, modbus.NewRTU(p, timeout, retries))
		}, nil
	case DriverDLT645, DriverDLT645v97:
		mc := dv.DLT645Config(loc)
		if err := mc.Validate(); err != nil {
			return nil, err
		}
		return func(p hardware.Port) (drivers.Poller, error) { return dlt645.New(mc, p) }, nil
	case DriverCJT188:
		mc := dv.CJT188Config(loc)
		if err := mc.Validate(); err != nil {
			return nil, err
		}
		return func(p hardware.Port) (drivers.Poller, error) { return cjt188.New(mc, p) }, nil
	}
	return nil, fmt.Errorf("%w: driver %s is not a serial driver", ErrInvalid, dv.Driver)
}
