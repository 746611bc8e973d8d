package bus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/dlt645"
	"github.com/townlink/townlink/firmware-sim/dlt645sim"
	"github.com/townlink/townlink/gateway/bus"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/hardware"
)

// A three-phase DL/T 645 meter configured with no read: goes through the
// config file, its driver and the line owner on a real PTY to the
// independent firmware, and reports phases B and C (the driver's default
// read set, which the config asks for instead of keeping its own).
func TestMeterWithNoReadReportsAllThreePhases(t *testing.T) {
	const addr = "202600000001"
	cfg, err := config.Parse("t.yaml", []byte(`gateway: {id: gw-1, county: "320583", township: "320583104"}
uplink: {brokers: ["tcp://127.0.0.1:1883"]}
lines: [{name: L1, port: /dev/null}]
devices:
  - {id: m1, driver: dlt645, line: L1, address: "`+addr+`", interval: 1s}
`))
	if err != nil {
		t.Fatal(err)
	}
	m := dlt645sim.NewMeter(addr, dlt645sim.V2007)
	m.SetPhases(3)
	for k, v := range map[string]string{"voltage_a_v": "220.1", "voltage_b_v": "221.2", "voltage_c_v": "222.3",
		"current_a_a": "1.001", "current_b_a": "2.002", "current_c_a": "3.003"} {
		m.Set(k, v)
	}
	sim := dlt645sim.NewLine(cfg.Lines[0].Mode(), m)
	dc := cfg.Devices[0].DLT645Config(cfg.Gateway.Location)
	got := make(chan drivers.Reading, 1)
	var once sync.Once
	l := newLine(t, bus.Config{Name: "L1", Mode: cfg.Lines[0].Mode(), Open: serveMeters(t, sim),
		Emit: func(_ context.Context, rs []drivers.Reading) error {
			once.Do(func() { got <- rs[0] })
			return nil
		},
		Devices: []bus.Device{{ID: "m1", Interval: time.Second, New: func(p hardware.Port) (drivers.Poller, error) { return dlt645.New(dc, p) }}}})
	runLine(t, l)
	var r drivers.Reading
	select {
	case r = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("no reading within 20 s")
	}
	for k, want := range map[string]string{"voltage_b_v": "221.2", "voltage_c_v": "222.3", "current_b_a": "2.002", "current_c_a": "3.003"} {
		if v, ok := r.Values[k]; !ok || v.String() != want {
			t.Errorf("%s = %v (present %v), want %s; reading %v", k, v, ok, want, fmt.Sprint(r.Values))
		}
	}
}
