package config

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/dlt645"
)

func deviceKeys() []string {
	return []string{"id", "kind", "driver", "grid", "interval", "timeout", "retries", "line",
		"unit", "host", "points", "outputs", "address", "read", "meter_type", "di_order",
		"pin", "input", "debounce", "per_pulse", "quantity", "start",
		"username", "password_file", "wait_alarm"}
}

// keyDrivers lists the drivers a device key belongs to (nil: all).
func keyDrivers(key string) []Driver {
	polled := []Driver{DriverModbus, DriverModbusTCP, DriverDLT645, DriverDLT645v97, DriverCJT188}
	switch key {
	case "interval":
		return append(polled, DriverPulse)
	case "timeout":
		return polled
	case "retries": // a Modbus TCP device reconnects at its next poll instead
		return []Driver{DriverModbus, DriverDLT645, DriverDLT645v97, DriverCJT188}
	case "line":
		return []Driver{DriverModbus, DriverDLT645, DriverDLT645v97, DriverCJT188}
	case "unit", "points":
		return []Driver{DriverModbus, DriverModbusTCP}
	case "host":
		return []Driver{DriverModbusTCP}
	case "outputs":
		return []Driver{DriverModbus, DriverModbusTCP, DriverKiosk}
	case "address":
		return []Driver{DriverDLT645, DriverDLT645v97, DriverCJT188}
	case "read":
		return []Driver{DriverDLT645, DriverDLT645v97}
	case "meter_type", "di_order":
		return []Driver{DriverCJT188}
	case "pin", "input", "debounce", "per_pulse", "quantity", "start":
		return []Driver{DriverPulse}
	case "username", "password_file":
		return []Driver{DriverRecorder, DriverKiosk}
	case "wait_alarm":
		return []Driver{DriverKiosk}
	}
	return nil
}

func driverNames(ds []Driver) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d)
	}
	return out
}

func allDrivers() []string {
	return driverNames([]Driver{DriverModbus, DriverModbusTCP, DriverDLT645, DriverDLT645v97, DriverCJT188, DriverPulse, DriverRecorder, DriverKiosk})
}

func allKinds() []string {
	return []string{"power", "water", "enterprise", "gpio", "traffic", "recorder", "kiosk"}
}

// kindDrivers lists the drivers that can serve a kind.
func kindDrivers(k Kind) []Driver {
	switch k {
	case KindPower:
		return []Driver{DriverDLT645, DriverDLT645v97, DriverModbus, DriverModbusTCP, DriverPulse} // pulse: S0 output
	case KindWater:
		return []Driver{DriverCJT188, DriverPulse, DriverModbus, DriverModbusTCP}
	case KindEnterprise:
		return []Driver{DriverModbus, DriverModbusTCP}
	case KindGPIO, KindTraffic:
		return []Driver{DriverPulse}
	case KindRecorder:
		return []Driver{DriverRecorder}
	case KindKiosk:
		return []Driver{DriverKiosk}
	}
	return nil
}

func deviceHint(key string) string {
	switch key {
	case "baud", "parity", "data_bits", "stop_bits", "port", "gap":
		return "serial settings belong to the line: set " + key + " in lines[] and refer to it with line: <name>"
	case "name":
		return "a device is named by id:"
	case "type", "table", "scale", "offset", "order":
		return key + " belongs to an entry of points:"
	}
	return ""
}

func (d *decoder) decodeDevice(it field, dev *Device) (fields, []fields, bool) {
	f, ok := d.mapping(it.val, it.path, deviceKeys(), deviceHint)
	if !ok {
		return f, nil, false
	}
	if isNull(f.node) {
		d.errAt(f.node, f.path, "empty device entry; write id: and driver:")
		return f, nil, false
	}
	d.decodeIdentity(&f, dev)
	if dev.Driver == "" {
		return f, nil, true // the rest depends on the driver
	}
	d.dropForeignKeys(&f, dev)
	d.decodeTiming(&f, dev)
	pts := d.decodeModbus(&f, dev)
	d.decodeOutputs(&f, dev)
	d.decodeMeter(&f, dev)
	d.decodeRest(&f, dev)
	return f, pts, true
}

// decodeIdentity reads id, driver, kind and grid.
func (d *decoder) decodeIdentity(f *fields, dev *Device) {
	dev.has = f.keys()
	if x, ok := f.get("id"); ok {
		if s, ok := d.str(x); ok {
			if validDeviceID(s) {
				dev.ID = s
			} else {
				d.errAt(deref(x.val), x.path, "%q is not a valid device id (1-64 letters, digits, '.', '_' or '-', starting with a letter or digit)", clip(s))
			}
		}
	} else {
		d.missing(f, "id", "a unique device id, e.g. chem-plant-3-outlet")
	}
	if x, ok := f.get("driver"); ok {
		if s, ok := d.enum(x, "a driver", allDrivers()...); ok {
			dev.Driver = Driver(s)
		}
	} else {
		d.missing(f, "driver", "one of "+orList(allDrivers()))
	}
	if x, ok := f.get("kind"); ok {
		if s, ok := d.enum(x, "a device kind", allKinds()...); ok {
			dev.Kind = Kind(s)
			if dev.Driver != "" && !contains(driverNames(kindDrivers(dev.Kind)), string(dev.Driver)) {
				d.errAt(deref(x.val), x.path, "%s %s device cannot use driver %s (%s devices use %s)", article(string(dev.Kind)), dev.Kind, dev.Driver, dev.Kind, orList(driverNames(kindDrivers(dev.Kind))))
			}
		}
	}
	if x, ok := f.get("grid"); ok {
		dev.Grid, _ = d.str(x)
	}
}

// dropForeignKeys reports (and forgets) keys that do not belong to the
// device's driver.
func (d *decoder) dropForeignKeys(f *fields, dev *Device) {
	// Keys that do not belong to this driver.
	for _, k := range deviceKeys() {
		x, ok := f.m[k]
		if !ok {
			continue
		}
		if ds := keyDrivers(k); ds != nil && !contains(driverNames(ds), string(dev.Driver)) {
			d.errAt(x.key, x.path, "%s is only for %s devices (this one's driver is %s); remove it", k, andList(driverNames(ds)), dev.Driver)
			delete(f.m, k)
			delete(dev.has, k)
		}
	}
}

// decodeTiming reads interval, timeout, retries and the line.
func (d *decoder) decodeTiming(f *fields, dev *Device) {
	drv := dev.Driver
	if x, ok := f.get("interval"); ok {
		dev.Interval, _ = d.duration(x, 100*time.Millisecond, 24*time.Hour)
	}
	if x, ok := f.get("timeout"); ok {
		dev.Timeout, _ = d.duration(x, 10*time.Millisecond, time.Minute)
	}
	if x, ok := f.get("retries"); ok {
		dev.Retries, _ = d.integer(x, 0, 10, "0..10 retries after the first try")
	}
	if drv.Serial() {
		if x, ok := f.get("line"); ok {
			dev.Line, _ = d.nonEmpty(x, "the name of a lines[] entry")
		} else {
			d.missing(f, "line", "the name of the lines[] entry the device is wired to")
		}
	}
}

// decodeModbus reads a Modbus device's unit, host and register map.
func (d *decoder) decodeModbus(f *fields, dev *Device) []fields {
	drv := dev.Driver
	switch drv {
	case DriverModbus:
		if x, ok := f.get("unit"); ok {
			dev.Unit, _ = d.integer(x, 1, 247, "Modbus unit ids are 1..247")
		} else {
			d.missing(f, "unit", "the Modbus unit id, 1..247")
		}
	case DriverModbusTCP:
		if x, ok := f.get("unit"); ok {
			if u, ok := d.integer(x, 1, 255, "Modbus TCP unit ids are 1..247, or 255 for a device that is not a gateway"); ok {
				if u > 247 && u < 255 {
					d.errAt(deref(x.val), x.path, "unit %d is reserved; use 1..247, or 255 for a device that is not a gateway", u)
				} else {
					dev.Unit = u
				}
			}
		}
		if x, ok := f.get("host"); ok {
			dev.Host, _ = d.hostPort(x, false, "10.0.0.5:502")
			if dev.Host == "" && !isNull(x.val) {
				if s, _ := d.str(x); s == "" {
					d.errAt(deref(x.val), x.path, "is empty; write host:port, e.g. 10.0.0.5:502")
				}
			}
		} else {
			d.missing(f, "host", "host:port of the Modbus TCP device, e.g. 10.0.0.5:502")
		}
	}
	var pts []fields
	if drv == DriverModbus || drv == DriverModbusTCP {
		if x, ok := f.get("points"); ok {
			items, isList := d.list(x, "a list of {name: ..., table: holding, address: 0, type: uint16}")
			seen := map[string]*yaml.Node{}
			for _, pit := range items {
				var pt Point
				pf, ok := d.decodePoint(pit, &pt)
				if !ok {
					continue
				}
				if pt.Name != "" {
					if prev, dup := seen[pt.Name]; dup {
						x, _ := pf.get("name")
						d.errAt(deref(x.val), x.path, "point %q is defined twice (also at line %d); point names must be unique per device", pt.Name, prev.Line)
						continue
					}
					x, _ := pf.get("name")
					seen[pt.Name] = deref(x.val)
				}
				dev.Points = append(dev.Points, pt)
				pts = append(pts, pf)
			}
			if isList && len(items) == 0 {
				d.errAt(deref(x.val), x.path, "is empty; list the registers to read")
			}
		} else {
			d.missing(f, "points", "the register map: a list of {name, table, address, type}")
		}
	}
	return pts
}

// decodeOutputs reads the outputs the platform may set.
func (d *decoder) decodeOutputs(f *fields, dev *Device) {
	drv := dev.Driver
	if x, ok := f.get("outputs"); ok {
		outs, items, _ := d.strList(x, "outputs: [pump_on]")
		for i, o := range outs {
			at, path := deref(items[i].val), items[i].path
			if drv == DriverKiosk {
				if !validPointName(o) {
					d.errAt(at, path, "%q is not a valid output name (lower-case letters, digits and _)", clip(o))
					continue
				}
			} else {
				pt := findPoint(dev.Points, o)
				switch {
				case pt == nil:
					d.errAt(at, path, "%q is not a point of this device%s", clip(o), didYouMean(o, pointNames(dev.Points)))
					continue
				case pt.Table != TableCoil && pt.Table != TableHolding:
					d.errAt(at, path, "%q is %s %s point; only coil and holding points can be written", o, article(string(pt.Table)), pt.Table)
					continue
				}
			}
			dev.Outputs = append(dev.Outputs, o)
		}
	}
}

// decodeMeter reads a meter's address, read set, meter type and DI order.
func (d *decoder) decodeMeter(f *fields, dev *Device) {
	drv := dev.Driver
	switch drv {
	case DriverDLT645, DriverDLT645v97, DriverCJT188:
		digits, std := 12, "DL/T 645"
		if drv == DriverCJT188 {
			digits, std = 14, "CJ/T 188"
		}
		if x, ok := f.get("address"); ok {
			if s, ok := d.str(x); ok {
				a := strings.ToUpper(strings.TrimSpace(s))
				switch {
				case len(a) < digits:
					d.errAt(deref(x.val), x.path, "%q has %d characters; a %s address has %d digits (quote it and pad with leading zeros, e.g. %q)", clip(s), len(a), std, digits, strings.Repeat("0", digits-len(a))+a)
				case len(a) > digits:
					d.errAt(deref(x.val), x.path, "%q has %d characters; a %s address has %d digits (too many: check it against the meter's nameplate)", clip(s), len(a), std, digits)
				case strings.Trim(a, "0123456789A") != "":
					d.errAt(deref(x.val), x.path, "%q is not a %s address (%d digits; \"A\" for wildcard digits, e.g. %q)", clip(s), std, digits, strings.Repeat("A", digits))
				default:
					dev.Address = a
				}
			}
		} else {
			d.missing(f, "address", fmt.Sprintf("the meter's %d-digit address as a quoted string, or %q if it is alone on its line", digits, strings.Repeat("A", digits)))
		}
	}
	if x, ok := f.get("read"); ok {
		items, fs, _ := d.strList(x, "read: [energy_kwh, voltage_a_v]")
		v := dlt645.V2007
		if drv == DriverDLT645v97 {
			v = dlt645.V1997
		}
		std := dlt645.Points(v) // the driver says what each edition can read
		for i, s := range items {
			if contains(std, s) {
				dev.Read = append(dev.Read, s)
			} else {
				d.errAt(deref(fs[i].val), fs[i].path, "%q is not a DL/T 645 item this gateway reads (%s)", clip(s), want(s, std))
			}
		}
		if n := deref(x.val); n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
			d.errAt(deref(x.val), x.path, "is empty; remove it to read the standard set, or list the items")
		}
	}
	if x, ok := f.get("meter_type"); ok {
		dev.MeterType, _ = d.integer(x, 0, 255, "a CJ/T 188 meter type is one byte, e.g. 0x10 for cold water")
	}
	if x, ok := f.get("di_order"); ok {
		if s, ok := d.enum(x, "a DI byte order", "901F", "1F90"); ok {
			dev.DIOrder = s
		}
	}
}

// decodeRest reads the pulse, field-device and kiosk keys.
func (d *decoder) decodeRest(f *fields, dev *Device) {
	drv := dev.Driver
	if drv == DriverPulse {
		d.decodePulse(f, dev)
	}
	if drv == DriverRecorder || drv == DriverKiosk {
		if x, ok := f.get("username"); ok {
			dev.Username, _ = d.nonEmpty(x, "the MQTT username the device logs in with")
		} else {
			d.missing(f, "username", "the MQTT username the device logs in with to the field broker")
		}
		if x, ok := f.get("password_file"); ok {
			if pf, ok := d.nonEmpty(x, "the path of the file holding the device's password"); ok {
				dev.PasswordFile, _ = d.absFile(x, "/etc/townlink/devices/"+pf)
			}
		} else {
			d.missing(f, "password_file", "the path of the file holding the device's MQTT password")
		}
	}
	if x, ok := f.get("wait_alarm"); ok {
		dev.WaitAlarm, _ = d.duration(x, 0, 24*time.Hour)
	}
}

func (d *decoder) decodePulse(f *fields, dev *Device) {
	if x, ok := f.get("pin"); ok {
		dev.Pin, _ = d.nonEmpty(x, "a board label or GPIO line name, e.g. DI3")
	} else {
		d.missing(f, "pin", "a board label or GPIO line name, e.g. DI3")
	}
	if x, ok := f.get("input"); ok {
		if s, ok := d.enum(x, "an input type", "counter", "door", "flood", "contact", "traffic"); ok {
			dev.Input = Input(s)
		}
	}
	if x, ok := f.get("debounce"); ok {
		dev.Debounce, _ = d.duration(x, 0, 10*time.Second)
	}
	counterOnly := func(key string) (field, bool) {
		x, ok := f.get(key)
		if ok && dev.Input != "" && dev.Input != InputCounter {
			d.errAt(x.key, x.path, "%s is only for input: counter (this input is %s); remove it", key, dev.Input)
			return x, false
		}
		return x, ok
	}
	if x, ok := counterOnly("per_pulse"); ok {
		if v, ok := d.decimal(x); ok {
			if r := v.Rat(); r.Sign() <= 0 {
				d.errAt(deref(x.val), x.path, "%s must be greater than 0 (the quantity one pulse stands for, e.g. \"0.01\")", v)
			} else {
				dev.PerPulse = v
			}
		}
	}
	if x, ok := counterOnly("quantity"); ok {
		if s, ok := d.str(x); ok {
			if validPointName(s) && s != "count" && s != "state" {
				dev.Quantity = s
			} else {
				d.errAt(deref(x.val), x.path, "%q is not a usable point name (lower-case letters, digits and _, with the unit, e.g. flow_m3; not count or state)", clip(s))
			}
		}
	}
	if x, ok := counterOnly("start"); ok {
		dev.Start, _ = d.decimal(x)
	}
	// per_pulse and quantity go together; start needs both.
	pp, hasPP := f.get("per_pulse")
	q, hasQ := f.get("quantity")
	if dev.Input == "" || dev.Input == InputCounter {
		switch {
		case hasPP && !hasQ:
			d.errAt(pp.key, f.path, "per_pulse needs quantity: the point name of the scaled value, e.g. quantity: flow_m3")
		case hasQ && !hasPP:
			d.errAt(q.key, f.path, "quantity needs per_pulse: what one pulse stands for, e.g. per_pulse: \"0.01\"")
		}
		if s, ok := f.get("start"); ok && !(hasPP && hasQ) {
			d.errAt(s.key, f.path, "start needs per_pulse and quantity (it is the starting reading of the scaled quantity)")
		}
	}
}

func findPoint(pts []Point, name string) *Point {
	for i := range pts {
		if pts[i].Name == name {
			return &pts[i]
		}
	}
	return nil
}

func pointNames(pts []Point) []string {
	out := make([]string, len(pts))
	for i, p := range pts {
		out[i] = p.Name
	}
	return out
}

func (d *decoder) decodePoint(it field, pt *Point) (fields, bool) {
	f, ok := d.mapping(it.val, it.path, []string{"name", "table", "address", "type", "order", "scale", "offset"}, nil)
	if !ok {
		return f, false
	}
	if isNull(f.node) {
		d.errAt(f.node, f.path, "empty point; write {name: ..., table: ..., address: ...}")
		return f, false
	}
	good := true
	if x, ok := f.get("name"); ok {
		if s, ok := d.str(x); ok {
			if validPointName(s) {
				pt.Name = s
			} else {
				d.errAt(deref(x.val), x.path, "%q is not a valid point name (lower-case letters, digits and _, starting with a letter, with the unit, e.g. temp_c)", clip(s))
				good = false
			}
		}
	} else {
		d.missing(&f, "name", "the point name with its unit, e.g. temp_c")
		good = false
	}
	if x, ok := f.get("table"); ok {
		if s, ok := d.enum(x, "a Modbus table", "holding", "input", "coil", "discrete"); ok {
			pt.Table = Table(s)
		} else {
			good = false
		}
	} else {
		d.missing(&f, "table", "holding, input, coil or discrete")
		good = false
	}
	if x, ok := f.get("address"); ok {
		pt.Address, _ = d.integer(x, 0, 65535, "a Modbus protocol address is 0..65535; register 40001 is holding address 0")
	} else {
		d.missing(&f, "address", "the protocol address 0..65535; register 40001 is holding address 0")
		good = false
	}
	if pt.Table == "" {
		return f, good
	}
	if pt.Table.Bits() {
		for _, k := range []string{"type", "order", "scale", "offset"} {
			if x, ok := f.m[k]; ok {
				d.errAt(x.key, x.path, "%s points are single bits and have no %s; remove it", pt.Table, k)
				good = false
			}
		}
		return f, good
	}
	if x, ok := f.get("type"); ok {
		if s, ok := d.enum(x, "a register type", "int16", "uint16", "int32", "uint32", "float32", "int64", "uint64", "float64"); ok {
			pt.Type = RegType(s)
			if w := pt.Type.Words(); pt.Address+w-1 > 65535 {
				d.errAt(deref(x.val), x.path, "a %s at address %d runs past the last register 65535", s, pt.Address)
				good = false
			}
		} else {
			good = false
		}
	} else {
		d.missing(&f, "type", "int16, uint16, int32, uint32, float32, int64, uint64 or float64")
		good = false
	}
	if x, ok := f.get("order"); ok {
		if s, ok := d.enum(x, "a byte order", "ABCD", "CDAB", "BADC", "DCBA"); ok {
			pt.Order = Order(s)
			if pt.Type.Words() == 1 && (pt.Order == OrderCDAB || pt.Order == OrderDCBA) {
				d.errAt(deref(x.val), x.path, "%s swaps words, but a %s is one register (use ABCD or BADC)", s, pt.Type)
				good = false
			}
		}
	}
	for _, k := range []struct {
		key string
		dst *drivers.Value
	}{{"scale", &pt.Scale}, {"offset", &pt.Offset}} {
		x, ok := f.get(k.key)
		if !ok {
			continue
		}
		if pt.Type.Float() {
			d.errAt(x.key, x.path, "%s applies to integer registers; a %s is used as read (remove it)", k.key, pt.Type)
			good = false
			continue
		}
		v, ok := d.decimal(x)
		if !ok {
			good = false
			continue
		}
		if k.key == "scale" && v.Rat().Sign() == 0 {
			d.errAt(deref(x.val), x.path, "scale 0 would make every value 0 (remove it for the raw value)")
			good = false
			continue
		}
		*k.dst = v
	}
	return f, good
}
