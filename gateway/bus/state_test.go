package bus_test

import (
	"testing"

	"github.com/townlink/townlink/gateway/bus"
	"github.com/townlink/townlink/uplink/wire"
)

// The state's spelling is the contract's; Up is the metrics gauge.
func TestStateIsTheWireSpelling(t *testing.T) {
	for _, c := range []struct {
		s    bus.State
		wire string
		up   float64
	}{{bus.OK, wire.DeviceOK, 1}, {bus.Degraded, wire.DeviceDegraded, 0.5}, {bus.Down, wire.DeviceDown, 0}} {
		if c.s.String() != c.wire || c.s.Up() != c.up {
			t.Errorf("%q: String %q Up %v, want %q %v", string(c.s), c.s.String(), c.s.Up(), c.wire, c.up)
		}
		if got, ok := bus.ParseState(c.wire); !ok || got != c.s {
			t.Errorf("ParseState(%q) = %v, %v", c.wire, got, ok)
		}
	}
	if _, ok := bus.ParseState("online"); ok {
		t.Error("ParseState accepted a gateway state")
	}
}
