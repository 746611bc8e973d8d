package localapi

import (
	"time"

	"github.com/townlink/townlink/gateway/recent"
)

// Status is the gateway now, as `townlink status` and the local page show it.
type Status struct {
	Gateway  string            `json:"gateway"`
	Version  string            `json:"version"`
	Boot     string            `json:"boot"`
	Time     time.Time         `json:"time"`
	Clock    string            `json:"clock"` // synced | unsynced
	Uplink   Uplink            `json:"uplink"`
	Devices  []Device          `json:"devices"`
	Lines    []Line            `json:"lines"`
	Streams  []Stream          `json:"streams"`
	Dropped  map[string]uint64 `json:"dropped,omitempty"`
	Alarms   []Alarm           `json:"alarms"`
	Certs    []Cert            `json:"certs"`
	Field    Field             `json:"field"`
	Restarts map[string]uint64 `json:"restarts,omitempty"`
}

// Uplink is the connection to the county.
type Uplink struct {
	Connected bool     `json:"connected"`
	Brokers   []string `json:"brokers"`
	Backlog   uint64   `json:"backlog"` // records waiting, all streams
	// OldestUnsentMS is the age of the oldest record not yet acknowledged,
	// all streams; 0 when none waits.
	OldestUnsentMS uint64 `json:"oldest_unsent_ms"`
}

// Device is one configured device.
type Device struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Driver string `json:"driver"`
	Line   string `json:"line,omitempty"` // serial devices
	State  string `json:"state"`          // ok | degraded | down
	// LastError is why the last poll failed (serial devices), "" after a good one.
	LastError string         `json:"last_error,omitempty"`
	Values    []recent.Point `json:"values"` // last value of each point, by name
}

// Line is one serial line's figures since the gateway started.
type Line struct {
	Name         string  `json:"name"`
	Port         string  `json:"port"`
	Mode         string  `json:"mode"` // e.g. 2400 8E1
	PortOpen     bool    `json:"port_open"`
	Utilisation  float64 `json:"utilisation"` // 0..1
	OK           uint64  `json:"ok"`
	Timeouts     uint64  `json:"timeouts"`
	FrameErrors  uint64  `json:"frame_errors"`
	DeviceErrors uint64  `json:"device_errors"`
	OtherErrors  uint64  `json:"other_errors"`
	Reopens      uint64  `json:"reopens"`
}

// Errors is the line's failed polls of every kind.
func (l Line) Errors() uint64 { return l.Timeouts + l.FrameErrors + l.DeviceErrors + l.OtherErrors }

// Stream is one uplink stream's queue.
type Stream struct {
	Name           string `json:"name"`
	Backlog        uint64 `json:"backlog"`
	OldestUnsentMS uint64 `json:"oldest_unsent_ms"`
	LastSeq        uint64 `json:"last_seq"`
}

// Alarm is an active alarm (the rules engine's).
type Alarm struct {
	Device   string    `json:"device"`
	Rule     string    `json:"rule"`
	Severity string    `json:"severity"`
	Message  string    `json:"message"`
	Since    time.Time `json:"since"`
}

// Cert is a certificate's days left (negative: expired).
type Cert struct {
	Name     string `json:"name"`
	DaysLeft int64  `json:"days_left"`
}

// Field counts the recorders and kiosks on the field broker.
type Field struct {
	Configured int `json:"configured"`
	Online     int `json:"online"`
}

// ReadResult is one poll of one device.
type ReadResult struct {
	Device string       `json:"device"`
	Time   time.Time    `json:"time"`
	Values []PointValue `json:"values"`
	// Error is set when the device answered in part.
	Error string `json:"error,omitempty"`
}

// PointValue is one point's value, exact as the device gave it; the
// point's name carries its unit (energy_kwh, temp_c).
type PointValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TimeSyncResult says on how many lines the time was broadcast.
type TimeSyncResult struct {
	Lines int       `json:"lines"`
	Time  time.Time `json:"time"`
}

// ScanOptions narrow a scan (query parameters of /scan).
type ScanOptions struct {
	// Baud is "" (the line's setting), "auto" (the usual settings of each
	// protocol) or a rate such as 2400.
	Baud string `json:"baud,omitempty"`
	// Protocols to look for (dlt645, cjt188, modbus); empty: all.
	Protocols []string `json:"protocols,omitempty"`
	// Line is the line scanned (set by the service, for the config
	// entries it answers).
	Line string `json:"-"`
}

// Progress is how far a scan has got.
type Progress struct {
	Done  int    `json:"done"`
	Total int    `json:"total"`
	Note  string `json:"note,omitempty"` // what is being tried, e.g. "modbus 9600 8N1 unit 17"
}

// Found is one device a scan found.
type Found struct {
	Protocol string `json:"protocol"` // dlt645, cjt188, modbus
	Edition  string `json:"edition,omitempty"`
	Address  string `json:"address"`
	Serial   string `json:"serial"`            // e.g. 2400 8E1
	Reading  string `json:"reading,omitempty"` // a first reading, with units
	Config   string `json:"config,omitempty"`  // config lines to paste
}

// ScanEvent is one line of a scan's answer stream.
type ScanEvent struct {
	Progress *Progress `json:"progress,omitempty"`
	Found    []Found   `json:"found,omitempty"`
	Done     bool      `json:"done,omitempty"` // the last event; Found may be empty
	Error    string    `json:"error,omitempty"`
}
