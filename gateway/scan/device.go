package scan

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/cjt188"
	"github.com/townlink/townlink/drivers/dlt645"
	"github.com/townlink/townlink/drivers/modbus"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/hardware"
)

// serial fills what every polled serial device gets by default in the
// config (config.Default*).
func (r *runner) serial(d config.Device) config.Device {
	d.Line = r.o.lineName()
	d.Interval = config.DefaultInterval
	d.Timeout = config.DefaultTimeout
	d.Retries = config.DefaultRetries
	return d
}

func (r *runner) meter(a Attempt, addr string) Found {
	drv := config.DriverDLT645
	if a.Edition == DLT645v1997 {
		drv = config.DriverDLT645v97
	}
	d := r.serial(config.Device{ID: "meter-" + addr, Kind: config.KindPower, Driver: drv, Address: addr,
		Read: config.DefaultRead(drv)})
	return Found{Edition: a.Edition, Mode: a.Mode, Device: d}
}

func (r *runner) water(a Attempt, m cjt188.Found) Found {
	addr := m.Address.String()
	d := r.serial(config.Device{ID: "water-" + addr, Kind: config.KindWater, Driver: config.DriverCJT188,
		Address: addr, MeterType: int(m.Type), DIOrder: config.DefaultDIOrder})
	f := Found{Edition: a.Edition, Mode: a.Mode, Device: d}
	if err := (cjt188.Config{Device: d.ID, Address: addr, MeterType: m.Type}).Validate(); err != nil {
		f.Note = fmt.Sprintf("meter type %02X answered, but the cjt188 driver cannot read it: %v", m.Type, err)
	}
	return f
}

func (r *runner) unit(a Attempt, u modbus.Present) Found {
	id := fmt.Sprintf("%s-unit-%d", idPart(r.o.lineName()), u.Unit)
	d := r.serial(config.Device{ID: id, Kind: config.KindEnterprise, Driver: config.DriverModbus, Unit: int(u.Unit)})
	return Found{Edition: a.Edition, Mode: a.Mode, Device: d, Exception: u.Exception}
}

// idPart turns a line name into something a device id may contain.
func idPart(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteRune(c)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-_")
	if out == "" || len(out) > 40 {
		return "line"
	}
	return out
}

// firstReading polls f's device once, after finding a Modbus unit's first
// readable point. Only ctx's end is returned; a failed reading is kept in
// f.ReadErr.
func (r *runner) firstReading(ctx context.Context, p hardware.Port, f *Found) error {
	if f.Note != "" {
		return nil
	}
	if f.Edition == ModbusRTU {
		pt, err := firstPoint(ctx, p, f.Device)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			f.Note = fmt.Sprintf("unit %d answered (exception %02X to holding 0) but holding, input, coil and discrete 0 all failed (%v): add its register map from the manual", f.Device.Unit, f.Exception, err)
			return nil
		}
		f.Device.Points = []config.Point{pt}
	}
	rs, err := Poll(ctx, f.Device, p)
	if len(rs) > 0 {
		f.Reading = rs[0]
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f.ReadErr = err.Error()
	}
	return nil
}

// firstPoint finds a point of a Modbus unit to read: address 0 of the
// holding registers, input registers, coils or discrete inputs, the first
// that answers normally.
func firstPoint(ctx context.Context, p hardware.Port, d config.Device) (config.Point, error) {
	t := modbus.NewRTU(p, d.Timeout, 0)
	tries := []struct {
		table config.Table
		req   modbus.Request
	}{
		{config.TableHolding, modbus.ReadHoldingRegisters(0, 1)},
		{config.TableInput, modbus.ReadInputRegisters(0, 1)},
		{config.TableCoil, modbus.ReadCoils(0, 1)},
		{config.TableDiscrete, modbus.ReadDiscreteInputs(0, 1)},
	}
	var errs []error
	for _, try := range tries {
		_, err := modbus.Do(ctx, t, byte(d.Unit), try.req)
		if err == nil {
			pt := config.Point{Name: string(try.table) + "_0", Table: try.table}
			if !try.table.Bits() {
				pt.Type, pt.Order = config.TypeUint16, config.OrderABCD
			}
			return pt, nil
		}
		if ctx.Err() != nil {
			return config.Point{}, ctx.Err()
		}
		errs = append(errs, fmt.Errorf("%s 0: %w", try.table, err))
	}
	return config.Point{}, errors.Join(errs...)
}

// Poll reads d once on p with its driver, built from the config entry the
// way the gateway builds it (driver, address or unit and points, timeout,
// retries).
func Poll(ctx context.Context, d config.Device, p hardware.Port) ([]drivers.Reading, error) {
	pl, err := NewPoller(d, p)
	if err != nil {
		return nil, err
	}
	return pl.Poll(ctx, nil)
}

// NewPoller builds the driver of a serial device's config entry on p.
func NewPoller(d config.Device, p hardware.Port) (drivers.Poller, error) {
	retries := d.Retries
	if retries == 0 {
		retries = -1 // the config's 0 is none; the drivers' 0 is their default
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = config.DefaultTimeout
	}
	switch d.Driver {
	case config.DriverDLT645, config.DriverDLT645v97:
		v := dlt645.V2007
		if d.Driver == config.DriverDLT645v97 {
			v = dlt645.V1997
		}
		return dlt645.New(dlt645.Config{Device: d.ID, Address: d.Address, Version: v, Points: d.Read,
			Timeout: timeout, Retries: retries, Class: drivers.Telemetry}, p)
	case config.DriverCJT188:
		return cjt188.New(cjt188.Config{Device: d.ID, Address: d.Address, MeterType: byte(d.MeterType),
			DIOrder: d.DIOrder, Timeout: timeout, Retries: retries, Class: drivers.Telemetry}, p)
	case config.DriverModbus:
		mc := modbus.Config{Device: d.ID, Unit: byte(d.Unit), Class: drivers.Telemetry}
		for _, cp := range d.Points {
			mp, err := modbusPoint(cp)
			if err != nil {
				return nil, fmt.Errorf("scan: %s: point %s: %w", d.ID, cp.Name, err)
			}
			mc.Points = append(mc.Points, mp)
		}
		return modbus.New(mc, modbus.NewRTU(p, timeout, max(retries, 0)))
	}
	return nil, fmt.Errorf("%w: scan: %s: driver %q does not read a serial line", drivers.ErrConfig, d.ID, d.Driver)
}

func modbusPoint(cp config.Point) (modbus.Point, error) {
	t, err := modbus.ParseTable(string(cp.Table))
	if err != nil {
		return modbus.Point{}, err
	}
	mp := modbus.Point{Name: cp.Name, Table: t, Address: uint16(cp.Address), Scale: cp.Scale, Offset: cp.Offset}
	if !cp.Table.Bits() {
		if mp.Type, err = modbus.ParseType(string(cp.Type)); err != nil {
			return mp, err
		}
		order := cp.Order
		if order == "" {
			order = config.OrderABCD
		}
		if mp.Order, err = modbus.ParseOrder(string(order)); err != nil {
			return mp, err
		}
	}
	return mp, nil
}
