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

// ParseState takes exactly the three spellings and round-trips them.
func FuzzParseState(f *testing.F) {
	for _, s := range []string{"ok", "degraded", "down", "", "OK", "online", "ok\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, ok := bus.ParseState(s)
		if ok != (s == "ok" || s == "degraded" || s == "down") {
			t.Fatalf("ParseState(%q) ok = %v", s, ok)
		}
		if ok && st.String() != s {
			t.Fatalf("ParseState(%q) = %q", s, st)
		}
		if !ok && st != bus.Down {
			t.Fatalf("ParseState(%q) = %q for garbage, want down", s, st)
		}
	})
}
