package scan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/cjt188"
	"github.com/townlink/townlink/drivers/modbus"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/hardware"
)

// serial fills what every polled serial device gets by default in the
// config (config.Default*).
func (r *runner) serial(d config.Device) config.Device {
	d.Line = r.o.lineName()
	d.Interval = config.DefaultInterval
	d.Timeout = 0 // the printed entry leaves them out: check derives them
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
	mc := d.CJT188Config(time.UTC) // the zone does not matter for whether the type is readable
	if err := mc.Validate(); err != nil {
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
	rs, err := Poll(ctx, f.Device, p, nil)
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
// way the gateway builds it; meter clocks are read in loc (nil: the
// config's default zone).
func Poll(ctx context.Context, d config.Device, p hardware.Port, loc *time.Location) ([]drivers.Reading, error) {
	pl, err := NewPoller(d, p, loc)
	if err != nil {
		return nil, err
	}
	return pl.Poll(ctx, nil)
}

// NewPoller builds the driver of a serial device's config entry on p with
// config.Device.SerialPoller, the conversion the gateway uses.
func NewPoller(d config.Device, p hardware.Port, loc *time.Location) (drivers.Poller, error) {
	if loc == nil {
		var err error
		if loc, err = time.LoadLocation(config.DefaultTimezone); err != nil {
			return nil, err
		}
	}
	d.Points = slices.Clone(d.Points)
	for i := range d.Points {
		if !d.Points[i].Table.Bits() && d.Points[i].Order == "" {
			d.Points[i].Order = config.OrderABCD
		}
	}
	newPoller, err := d.SerialPoller(loc)
	if err != nil {
		return nil, fmt.Errorf("scan: %s: %w", d.ID, err)
	}
	return newPoller(p)
}
