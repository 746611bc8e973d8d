// Package health is the gateway's one device-health contract. Every kind
// of device (a poller on a serial line, a Modbus TCP device, a GPIO pulse
// input, a recorder or kiosk on the field broker) reports a State through
// a Registry; the status message and the metrics read only the Registry.
package health

import (
	"fmt"
	"maps"
	"sync"
)

// State is a device's health. The zero value is Down, so a device that
// reports nothing is never taken for healthy.
type State uint8

// States, worst first. Their numbers are the townlink_device_state gauge.
const (
	Down     State = iota // the device cannot be read: several polls failed, the pin or line is away, not connected
	Degraded              // readable but not fully: the last poll failed or answered in part, not read yet, a count not saved
	Ok                    // the last read worked
)

// String is the status message's word: "ok", "degraded" or "down"
// (uplink/wire DeviceOK, DeviceDegraded, DeviceDown).
func (s State) String() string {
	switch s {
	case Down:
		return "down"
	case Degraded:
		return "degraded"
	case Ok:
		return "ok"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Reporter reports the states of the devices it owns (a serial line owner
// reports all the devices on its line).
type Reporter interface {
	States() map[string]State
}

// ReporterFunc is a function that is a Reporter.
type ReporterFunc func() map[string]State

// States calls f.
func (f ReporterFunc) States() map[string]State { return f() }

// Registry gathers the states of every configured device. It is safe for
// concurrent use; register everything before the first States call.
type Registry struct {
	mu        sync.Mutex
	ids       []string
	reporters []Reporter
	devices   map[string]func() State
}

// NewRegistry returns a registry of the configured devices ids: one that
// no reporter covers is Down.
func NewRegistry(ids ...string) *Registry {
	return &Registry{ids: append([]string(nil), ids...), devices: map[string]func() State{}}
}

// Add registers a reporter of several devices.
func (r *Registry) Add(rep Reporter) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reporters = append(r.reporters, rep)
}

// Device registers the state function of one device. It takes precedence
// over a Reporter that also reports id.
func (r *Registry) Device(id string, state func() State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.devices[id] = state
}

// States returns every device's state: each configured device, and any
// other device a reporter reports.
func (r *Registry) States() map[string]State {
	r.mu.Lock()
	reps := append([]Reporter(nil), r.reporters...)
	devs := maps.Clone(r.devices)
	ids := r.ids
	r.mu.Unlock()
	m := make(map[string]State, len(ids))
	for _, id := range ids {
		m[id] = Down
	}
	for _, rep := range reps {
		maps.Copy(m, rep.States())
	}
	for id, f := range devs {
		m[id] = f()
	}
	return m
}

// Strings is states as the status message carries them.
func Strings(states map[string]State) map[string]string {
	m := make(map[string]string, len(states))
	for id, s := range states {
		m[id] = s.String()
	}
	return m
}
