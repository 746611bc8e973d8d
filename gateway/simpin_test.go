package gateway_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/townlink/townlink/firmware-sim/pulsesim"
	"github.com/townlink/townlink/hardware/gpio"
	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
	"github.com/townlink/townlink/uplink/wire"
)

// A pulse device whose pin is "sim:/path" reads the line townsim serves on
// that socket (the demo's wiring): the gateway dials hardware/gpiosim for
// it, and every pulse of the train is counted.
func TestPulseDeviceOnASimulatedPin(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "DI1")
	srv, err := pulsesim.Listen(sock, pulsesim.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	const pulses = 20
	// The train starts once the gateway is connected, so no pulse is played
	// to nobody; the simulator sends each edge ahead of its time.
	edges := func(yield func(e gpio.Edge) bool) {
		deadline := time.Now().Add(30 * time.Second)
		for srv.Stats().Clients == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		tr := pulsesim.Train{Start: time.Now().Add(time.Second), Period: 50 * time.Millisecond, Pulses: pulses,
			Bounce: 2 * time.Millisecond, Bounces: 2, Seed: 3}
		for e := range tr.Edges() {
			if !yield(e) {
				return
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, edges) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	broker := mosquittotest.Start(t)
	plat := newPlatform(t, broker.URL)
	path := writeConfig(t, t.TempDir(), broker.URL, "", `
- id: well-meter
  kind: water
  driver: pulse
  pin: "sim:`+sock+`"
  input: counter
  debounce: 10ms
  per_pulse: "0.01"
  quantity: flow_m3
  start: "100.00"
  interval: 200ms`)
	runGateway(t, path)
	plat.waitFor("every pulse counted", 60*time.Second, func() bool {
		r, ok := plat.latest(wire.StreamTelemetry, "well-meter")
		return ok && r.Vals["count"].String() == "20"
	})
	r, _ := plat.latest(wire.StreamTelemetry, "well-meter")
	if got := r.Vals["flow_m3"].String(); got != "100.20" {
		t.Errorf("flow_m3 = %s after %d pulses of 0.01 from 100.00, want 100.20", got, pulses)
	}
}
