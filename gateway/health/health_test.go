package health_test

import (
	"maps"
	"sync"
	"testing"

	"github.com/townlink/townlink/gateway/health"
	"github.com/townlink/townlink/uplink/wire"
)

func TestStateWordsAreTheWireWords(t *testing.T) {
	for s, want := range map[health.State]string{health.Ok: wire.DeviceOK, health.Degraded: wire.DeviceDegraded, health.Down: wire.DeviceDown} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", s, s, want)
		}
	}
	if got := health.State(9).String(); got != "State(9)" {
		t.Errorf("unknown state = %q", got)
	}
	var zero health.State
	if zero != health.Down {
		t.Errorf("zero State is %v, want down", zero)
	}
}

func TestRegistryGathersEveryKind(t *testing.T) {
	r := health.NewRegistry("m1", "m2", "door", "kiosk", "unwired")
	r.Add(health.ReporterFunc(func() map[string]health.State {
		return map[string]health.State{"m1": health.Ok, "m2": health.Degraded}
	}))
	var mu sync.Mutex
	door := health.Ok
	r.Device("door", func() health.State { mu.Lock(); defer mu.Unlock(); return door })
	r.Add(health.ReporterFunc(func() map[string]health.State { return map[string]health.State{"kiosk": health.Ok, "door": health.Ok} }))
	want := map[string]health.State{"m1": health.Ok, "m2": health.Degraded, "door": health.Ok, "kiosk": health.Ok, "unwired": health.Down}
	if got := r.States(); !maps.Equal(got, want) {
		t.Fatalf("States = %v, want %v", got, want)
	}
	mu.Lock()
	door = health.Down
	mu.Unlock()
	if got := r.States()["door"]; got != health.Down {
		t.Fatalf("door = %v after its pin failed, want down (a device function beats a reporter)", got)
	}
	if got := health.Strings(r.States()); got["m2"] != "degraded" || got["unwired"] != "down" || len(got) != 5 {
		t.Fatalf("Strings = %v", got)
	}
}
