package config

import (
	"log/slog"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/hardware"
)

// Config is the whole gateway configuration, after defaults.
type Config struct {
	Gateway     Gateway
	Uplink      Uplink
	Store       Store
	Lines       []Line
	FieldBroker FieldBroker
	Devices     []Device
	// Derived lists the values chosen for keys the file left out, and
	// from what (see Derived).
	Derived []Derived
	Web     Web
	Rules   []Rule // early warning (rules.go)
}

// Web is the local web page (devices, lines, uplink, alarms; actions
// after login). Off while Listen is empty.
type Web struct {
	Listen string // host:port, e.g. 127.0.0.1:8080 (loopback: reach it over ssh -L, or name a LAN address)
	// PasswordFile holds the technicians' password (mode 0600); without
	// it the page is read-only. Secret, blanked by Redacted.
	PasswordFile string
}

// Gateway identifies the gateway and sets process-wide options.
type Gateway struct {
	ID             string // contract id: [a-z0-9][a-z0-9-]{0,62}
	County         string // 6 digits (GB/T 2260)
	Township       string // 9 digits, starts with County
	DataDir        string // default /var/lib/townlink
	Board          string // optional board profile name
	LogLevel       slog.Level
	StatusInterval time.Duration // default 30s
	MetricsListen  string        // optional host:port for /metrics and /status
	// Timezone is the IANA zone of meter clocks and time sync (default
	// DefaultTimezone); Location is it loaded. The process's zone is never
	// used for meters.
	Timezone string
	Location *time.Location
	// TimeSyncAt is when the daily time broadcast to DL/T 645 meters goes
	// out, "HH:MM" in Location (default DefaultTimeSyncAt, a quiet hour).
	TimeSyncAt string
	Socket     string // control socket for townlink status/read/scan; default data_dir/townlink.sock
}

// NextTimeSync is the first daily time sync after now.
func (g Gateway) NextTimeSync(now time.Time) time.Time {
	at, err := time.Parse("15:04", g.TimeSyncAt)
	if err != nil {
		at, _ = time.Parse("15:04", DefaultTimeSyncAt)
	}
	loc := g.Location
	if loc == nil {
		loc = time.UTC
	}
	n := now.In(loc)
	next := time.Date(n.Year(), n.Month(), n.Day(), at.Hour(), at.Minute(), 0, 0, loc)
	if !next.After(n) {
		next = time.Date(n.Year(), n.Month(), n.Day()+1, at.Hour(), at.Minute(), 0, 0, loc)
	}
	return next
}

// AckMode says when a batch may be deleted from the gateway's store.
type AckMode string

// Acknowledgement modes (uplink contract).
const (
	AckBroker   AckMode = "broker"   // on the broker's PUBACK (default)
	AckPlatform AckMode = "platform" // on the platform's {stream, upto} ack
)

// Uplink is the connection to the county broker(s).
type Uplink struct {
	Brokers      []string // validated URLs: tcp://, mqtt://, tls://, ssl://, mqtts://
	CA           string   // path; needed (with Cert and Key) by TLS brokers
	Cert         string   // path
	Key          string   // path; secret, blanked by Redacted
	Username     string
	PasswordFile string // path; secret, blanked by Redacted
	Ack          AckMode
	Batch        Batch
	Window       int // publishes in flight; default 8
	Backoff      Backoff
	DrainRate    int // backlog records/s; 0 = unlimited; default 50000
	Quota        Quota

	has keySet
}

// TLS reports whether any broker URL uses TLS.
func (u *Uplink) TLS() bool {
	for _, b := range u.Brokers {
		if tlsScheme(schemeOf(b)) {
			return true
		}
	}
	return false
}

// Batch bounds one uplink message.
type Batch struct {
	MaxRecords int           // default 100
	MaxBytes   ByteSize      // default 64KiB
	MaxDelay   time.Duration // default 200ms; 0 = send at once
}

// Backoff bounds the reconnect delay.
type Backoff struct {
	Min time.Duration // default 1s
	Max time.Duration // default 2m
}

// Quota is the disk quota per stream; 0 means no quota.
type Quota struct {
	Telemetry ByteSize
	Events    ByteSize
	Alarms    ByteSize
	Evidence  ByteSize
}

// StoreProfile selects the store's memory/throughput trade-off.
type StoreProfile string

// Store profiles.
const (
	ProfileLowMemory StoreProfile = "low-memory" // default
	ProfileDefault   StoreProfile = "default"
)

// Store configures the durable queue.
type Store struct {
	Profile StoreProfile
}

// Line is one serial (RS-485) line, owned by one goroutine.
type Line struct {
	Name     string
	Port     string // device path or board label, kept as written
	Device   string // Port resolved through the board profile: the path to open
	Baud     int
	DataBits int
	Parity   hardware.Parity
	StopBits int
	Gap      time.Duration // extra inter-frame gap; 0 = from the baud rate only

	has keySet
}

// Mode returns the line's serial framing.
func (l *Line) Mode() hardware.Mode {
	return hardware.Mode{Baud: l.Baud, DataBits: l.DataBits, Parity: l.Parity, StopBits: l.StopBits}
}

// FieldBroker is the embedded MQTT broker for recorders and kiosks.
type FieldBroker struct {
	Listen     string // host:port, plain MQTT
	TLSListen  string // host:port, needs Cert and Key
	Cert       string // path
	Key        string // path; secret, blanked by Redacted
	MaxPayload ByteSize
	// KeepaliveMax is the longest keepalive a device gets (0 = the broker's
	// default, 2m); MQTT 3.1.1 devices must ping within it.
	KeepaliveMax time.Duration
	// MaxPendingPerAddr bounds connections from one address that have not
	// logged in yet (0 = the broker's default, 16); raise it for many
	// devices behind one NAT router.
	MaxPendingPerAddr int
}

// Enabled reports whether the broker listens at all.
func (f *FieldBroker) Enabled() bool { return f.Listen != "" || f.TLSListen != "" }

// Kind is a device's kind, the record kind on the wire.
type Kind string

// Device kinds (uplink contract).
const (
	KindPower      Kind = "power"
	KindWater      Kind = "water"
	KindEnterprise Kind = "enterprise"
	KindGPIO       Kind = "gpio"
	KindTraffic    Kind = "traffic"
	KindRecorder   Kind = "recorder"
	KindKiosk      Kind = "kiosk"
)

// Driver names the driver package that talks to a device.
type Driver string

// Drivers.
const (
	DriverModbus    Driver = "modbus"      // Modbus RTU on a line
	DriverModbusTCP Driver = "modbus-tcp"  // Modbus TCP to Host
	DriverDLT645    Driver = "dlt645"      // DL/T 645-2007 on a line
	DriverDLT645v97 Driver = "dlt645-1997" // DL/T 645-1997 on a line
	DriverCJT188    Driver = "cjt188"      // CJ/T 188 on a line
	DriverPulse     Driver = "pulse"       // a GPIO input
	DriverRecorder  Driver = "recorder"    // enforcement recorder over the field broker
	DriverKiosk     Driver = "kiosk"       // queue kiosk over the field broker
)

// Serial reports whether the driver talks on a serial line.
func (d Driver) Serial() bool {
	switch d {
	case DriverModbus, DriverDLT645, DriverDLT645v97, DriverCJT188:
		return true
	}
	return false
}

// Polled reports whether the gateway polls the device (it has an interval,
// timeout and retries).
func (d Driver) Polled() bool { return d.Serial() || d == DriverModbusTCP }

// Input is what a pulse device's pin is wired to.
type Input string

// Pulse inputs.
const (
	InputCounter Input = "counter" // count pulses (meters)
	InputDoor    Input = "door"
	InputFlood   Input = "flood"
	InputContact Input = "contact"
	InputTraffic Input = "traffic" // count vehicles per interval
)

// Device is one field device.
type Device struct {
	ID     string // [A-Za-z0-9][A-Za-z0-9._-]{0,63}
	Kind   Kind   // default from the driver
	Driver Driver
	Grid   string // optional grid-cell code

	// Polled devices (modbus, modbus-tcp, dlt645, dlt645-1997, cjt188).
	Interval time.Duration // default 10s; also pulse (report/count interval)
	// Timeout per request; when the file has none it is derived (see
	// Config.deriveTimeout and Derived).
	Timeout time.Duration
	// Retries after a request got no good reply: 0 means none, as in every
	// driver (drivers.CheckRetries); default the driver's DefaultRetries.
	Retries int

	minTimeout time.Duration // the shortest timeout that can work on the device's line

	Line string // serial drivers: a Lines[].Name

	// modbus, modbus-tcp
	Unit    int    // 1..247 (modbus-tcp: 0..255, default 1)
	Host    string // modbus-tcp: host:port
	Points  []Point
	Outputs []string // modbus*: coil/holding points the platform may set; kiosk: output names

	// dlt645, dlt645-1997, cjt188
	Address   string   // 12 (dlt645) or 14 (cjt188) digits; 'A' bytes are wildcards
	Read      []string // dlt645*: contract point names to read
	MeterType int      // cjt188 meter type, default 0x10 (cold water)
	DIOrder   string   // cjt188: "901F" (default) or "1F90"

	// pulse
	Pin      string        // board label or GPIO line name, kept as written
	PinLine  string        // Pin resolved through the board profile: the GPIO line to open
	Input    Input         // default counter
	Debounce time.Duration // default 20ms
	PerPulse drivers.Value // counter: quantity per pulse (KindNone if unset)
	Quantity string        // counter: point name of the scaled quantity
	Start    drivers.Value // counter: starting reading of Quantity (KindNone if unset)

	// recorder, kiosk
	Username     string
	PasswordFile string        // path; secret, blanked by Redacted
	WaitAlarm    time.Duration // kiosk: alarm when a wait exceeds this; 0 = off

	has keySet
}

// Table is a Modbus data table.
type Table string

// Modbus tables.
const (
	TableHolding  Table = "holding"
	TableInput    Table = "input"
	TableCoil     Table = "coil"
	TableDiscrete Table = "discrete"
)

// Bits reports whether the table holds single bits (coil, discrete).
func (t Table) Bits() bool { return t == TableCoil || t == TableDiscrete }

// RegType is how register words are read as a number.
type RegType string

// Register types.
const (
	TypeInt16   RegType = "int16"
	TypeUint16  RegType = "uint16"
	TypeInt32   RegType = "int32"
	TypeUint32  RegType = "uint32"
	TypeFloat32 RegType = "float32"
	TypeInt64   RegType = "int64"
	TypeUint64  RegType = "uint64"
	TypeFloat64 RegType = "float64"
)

// Words is the number of 16-bit registers the type takes (0 if unknown).
func (t RegType) Words() int {
	switch t {
	case TypeInt16, TypeUint16:
		return 1
	case TypeInt32, TypeUint32, TypeFloat32:
		return 2
	case TypeInt64, TypeUint64, TypeFloat64:
		return 4
	}
	return 0
}

// Float reports whether the type is IEEE-754.
func (t RegType) Float() bool { return t == TypeFloat32 || t == TypeFloat64 }

// Order is the byte order of a register value: A is the most significant
// byte of the first register on the wire. ABCD is big-endian (Modbus
// standard), CDAB swaps words, BADC swaps bytes, DCBA both. For 64-bit types
// the letters describe each half the same way.
type Order string

// Byte orders.
const (
	OrderABCD Order = "ABCD"
	OrderCDAB Order = "CDAB"
	OrderBADC Order = "BADC"
	OrderDCBA Order = "DCBA"
)

// Point is one entry of a Modbus register map.
type Point struct {
	Name    string
	Table   Table
	Address int     // 0..65535, protocol address (register 40001 is holding 0)
	Type    RegType // empty for coil/discrete
	Order   Order   // empty for coil/discrete; default ABCD
	// Scale and Offset turn an integer register into raw×Scale+Offset, an
	// exact decimal (drivers.Scale). KindNone when unset: the value is then
	// reported as read.
	Scale  drivers.Value
	Offset drivers.Value
}

// keySet records which keys were written in the file, so that defaults
// apply only to what was left out (absent ≠ 0).
type keySet map[string]bool

func (k keySet) set(key string) bool { return k[key] }
