package config

import (
	"path/filepath"
	"time"

	"github.com/townlink/townlink/hardware"
)

// Defaults, all in one place.
const (
	DefaultDataDir        = "/var/lib/townlink"
	DefaultStatusInterval = 30 * time.Second
	DefaultMaxRecords     = 100
	DefaultMaxBytes       = 64 * KiB
	DefaultMaxDelay       = 200 * time.Millisecond
	DefaultWindow         = 8
	DefaultBackoffMin     = time.Second
	DefaultBackoffMax     = 2 * time.Minute
	DefaultDrainRate      = 50000
	DefaultMaxPayload     = 256 * KiB
	DefaultInterval       = 10 * time.Second
	DefaultTimeout        = time.Second
	DefaultRetries        = 2
	DefaultDebounce       = 20 * time.Millisecond
	DefaultMeterType      = 0x10 // CJ/T 188: cold water meter
	DefaultDIOrder        = "901F"
	DefaultModbusTCPUnit  = 1
	DefaultDataBits       = 8
	DefaultStopBits       = 1
	DefaultSocketName     = "townlink.sock" // in data_dir
	// MaxSocketPath is the longest Unix socket path Linux takes
	// (sun_path is 108 bytes with its terminating NUL).
	MaxSocketPath = 107
)

// DefaultRead is what a dlt645 device reads when its config has no read:.
// DL/T 645-1997 defines no frequency item.
func DefaultRead(d Driver) []string {
	if d == DriverDLT645v97 {
		return []string{"energy_kwh", "energy_rev_kwh", "voltage_a_v", "current_a_a", "power_kw", "pf"}
	}
	return []string{"energy_kwh", "energy_rev_kwh", "voltage_a_v", "current_a_a", "power_kw", "pf", "freq_hz"}
}

// driverSerial is the factory serial setting of a driver's devices, used
// for a line that leaves baud or parity unset.
func driverSerial(d Driver) (baud int, parity hardware.Parity) {
	switch d {
	case DriverDLT645, DriverCJT188:
		return 2400, hardware.ParityEven
	case DriverDLT645v97:
		return 1200, hardware.ParityEven
	}
	return 9600, hardware.ParityNone
}

// lineSerial is the default baud and parity of a line: its devices'
// driver default when they all agree, else 9600 none (Parse reports the
// disagreement).
func (c *Config) lineSerial(name string) (baud int, parity hardware.Parity) {
	first := true
	baud, parity = 9600, hardware.ParityNone
	bAgree, pAgree := true, true
	for i := range c.Devices {
		dv := &c.Devices[i]
		if !dv.Driver.Serial() || dv.Line != name {
			continue
		}
		b, p := driverSerial(dv.Driver)
		if first {
			baud, parity, first = b, p, false
			continue
		}
		bAgree = bAgree && b == baud
		pAgree = pAgree && p == parity
	}
	if !bAgree {
		baud = 9600
	}
	if !pAgree {
		parity = hardware.ParityNone
	}
	return baud, parity
}

// applyDefaults fills in everything the file left out. It is the only place
// defaults live.
func (c *Config) applyDefaults() {
	g := &c.Gateway
	if g.DataDir == "" {
		g.DataDir = DefaultDataDir
	}
	if g.StatusInterval == 0 {
		g.StatusInterval = DefaultStatusInterval
	}
	if g.Socket == "" {
		g.Socket = filepath.Join(g.DataDir, DefaultSocketName)
	}
	// LogLevel: the zero value is slog.LevelInfo.

	u := &c.Uplink
	if u.Ack == "" {
		u.Ack = AckBroker
	}
	if u.Batch.MaxRecords == 0 {
		u.Batch.MaxRecords = DefaultMaxRecords
	}
	if u.Batch.MaxBytes == 0 {
		u.Batch.MaxBytes = DefaultMaxBytes
	}
	if !u.has.set("batch.max_delay") {
		u.Batch.MaxDelay = DefaultMaxDelay
	}
	if u.Window == 0 {
		u.Window = DefaultWindow
	}
	if u.Backoff.Min == 0 {
		u.Backoff.Min = DefaultBackoffMin
	}
	if u.Backoff.Max == 0 {
		u.Backoff.Max = max(DefaultBackoffMax, u.Backoff.Min)
	}
	if !u.has.set("drain_rate") {
		u.DrainRate = DefaultDrainRate
	}

	if c.Store.Profile == "" {
		c.Store.Profile = ProfileLowMemory
	}
	if c.FieldBroker.MaxPayload == 0 {
		c.FieldBroker.MaxPayload = DefaultMaxPayload
	}

	for i := range c.Lines {
		l := &c.Lines[i]
		b, p := c.lineSerial(l.Name)
		if l.Baud == 0 {
			l.Baud = b
		}
		if !l.has.set("parity") {
			l.Parity = p
		}
		if l.DataBits == 0 {
			l.DataBits = DefaultDataBits
		}
		if l.StopBits == 0 {
			l.StopBits = DefaultStopBits
		}
	}

	for i := range c.Devices {
		dv := &c.Devices[i]
		if dv.Kind == "" {
			dv.Kind = defaultKind(dv)
		}
		if dv.Driver.Polled() || dv.Driver == DriverPulse {
			if dv.Interval == 0 {
				dv.Interval = DefaultInterval
			}
		}
		if dv.Driver.Polled() {
			if dv.Timeout == 0 {
				dv.Timeout = DefaultTimeout
			}
			if !dv.has.set("retries") {
				dv.Retries = DefaultRetries
			}
		}
		switch dv.Driver {
		case DriverModbusTCP:
			if !dv.has.set("unit") {
				dv.Unit = DefaultModbusTCPUnit
			}
		case DriverDLT645, DriverDLT645v97:
			if dv.Read == nil {
				dv.Read = DefaultRead(dv.Driver)
			}
		case DriverCJT188:
			if !dv.has.set("meter_type") {
				dv.MeterType = DefaultMeterType
			}
			if dv.DIOrder == "" {
				dv.DIOrder = DefaultDIOrder
			}
		case DriverPulse:
			if dv.Input == "" {
				dv.Input = InputCounter
			}
			if !dv.has.set("debounce") {
				dv.Debounce = DefaultDebounce
			}
		}
		for j := range dv.Points {
			pt := &dv.Points[j]
			if !pt.Table.Bits() && pt.Order == "" {
				pt.Order = OrderABCD
			}
		}
	}
}

// defaultKind is the kind a device gets when the file does not say.
func defaultKind(dv *Device) Kind {
	switch dv.Driver {
	case DriverDLT645, DriverDLT645v97:
		return KindPower
	case DriverCJT188:
		return KindWater
	case DriverModbus, DriverModbusTCP:
		return KindEnterprise
	case DriverPulse:
		if dv.Input == InputTraffic {
			return KindTraffic
		}
		return KindGPIO
	case DriverRecorder:
		return KindRecorder
	case DriverKiosk:
		return KindKiosk
	}
	return ""
}
