package bus

import "github.com/townlink/townlink/uplink/wire"

// State is a device's health: the one type for it from the line owner to
// the status message and the metrics. Its spelling is the platform
// contract's (uplink/wire), so String is all a caller needs.
type State string

// Device states.
const (
	OK       State = wire.DeviceOK       // last poll answered fully
	Degraded State = wire.DeviceDegraded // last poll failed or answered in part, or not polled yet
	Down     State = wire.DeviceDown     // several polls in a row failed, or the line is closed
)

// String is the state as the status message spells it.
func (s State) String() string { return string(s) }

// Up is the state as a gauge: 1 ok, 0.5 degraded, 0 down (or unknown).
func (s State) Up() float64 {
	switch s {
	case OK:
		return 1
	case Degraded:
		return 0.5
	}
	return 0
}

// ParseState returns the state a string spells, and whether it is one.
func ParseState(s string) (State, bool) {
	switch st := State(s); st {
	case OK, Degraded, Down:
		return st, true
	}
	return Down, false
}
