package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
	_ "time/tzdata" // gateway.timezone must load on a board without /usr/share/zoneinfo

	"github.com/townlink/townlink/drivers/cjt188"
	"github.com/townlink/townlink/drivers/dlt645"
	"github.com/townlink/townlink/drivers/pulse"
	"github.com/townlink/townlink/gateway/fieldbroker"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/mqttpub"
)

// Defaults, all in one place.
const (
	DefaultDataDir        = "/var/lib/townlink"
	DefaultStatusInterval = 30 * time.Second
	DefaultMaxRecords     = uplink.DefaultMaxBatch // the forwarder owns its defaults
	DefaultMaxBytes       = 64 * KiB
	DefaultMaxDelay       = 200 * time.Millisecond
	DefaultWindow         = uplink.DefaultWindow
	DefaultBackoffMin     = mqttpub.DefaultBackoffMin // the MQTT client owns its back-off
	DefaultBackoffMax     = mqttpub.DefaultBackoffMax
	DefaultDrainRate      = 50000
	DefaultMaxPayload     = ByteSize(fieldbroker.DefaultMaxPayload) // the one payload limit, owned by the field broker
	DefaultInterval       = 10 * time.Second
	// DefaultTimezone is the zone of meter clocks (DL/T 645 and CJ/T 188
	// date and time registers are local time) and of time sync: China has
	// one zone. Never the process's own zone.
	DefaultTimezone = "Asia/Shanghai"
	// DefaultTimeSyncAt is the daily time broadcast's quiet hour (03:30
	// in gateway.timezone): no one reads meters for billing then.
	DefaultTimeSyncAt    = "03:30"
	DefaultDebounce      = pulse.DefaultDebounce // asked from the drivers, not copied
	DefaultMeterType     = int(cjt188.DefaultMeterType)
	DefaultDIOrder       = cjt188.DefaultDIOrder
	DefaultModbusTCPUnit = 1
	DefaultDataBits      = 8
	DefaultStopBits      = 1
	DefaultSocketName    = "townlink.sock" // in data_dir
	// MaxSocketPath is the longest Unix socket path Linux takes
	// (sun_path is 108 bytes with its terminating NUL).
	MaxSocketPath = 107
)

// DefaultRead is what a dlt645 device reads when its config has no read:
// the driver's own default (dlt645.StandardPoints), asked, not copied.
func DefaultRead(d Driver) []string {
	if d == DriverDLT645v97 {
		return dlt645.StandardPoints(dlt645.V1997)
	}
	return dlt645.StandardPoints(dlt645.V2007)
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
	if g.Timezone == "" {
		g.Timezone = DefaultTimezone
	}
	if g.Socket == "" {
		g.Socket = filepath.Join(g.DataDir, DefaultSocketName)
	}
	if g.TimeSyncAt == "" {
		g.TimeSyncAt = DefaultTimeSyncAt
	}
	if g.Location == nil {
		// The default zone is in the embedded zone database (time/tzdata).
		g.Location, _ = time.LoadLocation(g.Timezone)
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
		c.deviceDefaults(&c.Devices[i])
	}
}

// deviceDefaults fills in what the file left out of one device; lines
// must have theirs already (a timeout is derived from the line's speed).
func (c *Config) deviceDefaults(dv *Device) {
	if dv.Kind == "" {
		dv.Kind = defaultKind(dv)
	}
	if dv.Interval == 0 {
		switch {
		case dv.Driver == DriverPulse:
			dv.Interval = pulse.DefaultInterval // the driver's own: counters report once a minute
		case dv.Driver.Polled():
			dv.Interval = DefaultInterval
		}
	}
	if dv.Driver.Serial() {
		if !dv.has.set("retries") {
			dv.Retries = driverRetries(dv.Driver)
			c.derive(dv, "retries", fmt.Sprint(dv.Retries), fmt.Sprintf("%s default", dv.Driver))
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
			c.derive(dv, "read", strings.Join(dv.Read, ","), fmt.Sprintf("%s default", dv.Driver))
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
	if dv.Driver.Polled() {
		// After the points: a Modbus timeout depends on its reads.
		dv.minTimeout = c.deriveTimeout(dv)
	}
	if g := DriverGap(dv.Driver); g > 0 {
		c.derive(dv, "gap", g.String(), fmt.Sprintf("declared by the %s driver, kept by the line", dv.Driver))
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
