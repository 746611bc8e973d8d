package gateway_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/firmware-sim/dlt645sim"
	"github.com/townlink/townlink/firmware-sim/modbussim"
	"github.com/townlink/townlink/gateway"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serialsim"
	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
	"github.com/townlink/townlink/uplink/wire"
)

// serve runs a simulator on a fresh PTY and returns the path the gateway
// opens.
func serve(t *testing.T, srv interface {
	Serve(context.Context, hardware.Port) error
}) string {
	t.Helper()
	pty, err := serialsim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx, pty) }()
	t.Cleanup(func() { cancel(); <-done; pty.Close() })
	return pty.Path()
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

func runGateway(t *testing.T, path string) (stop func()) {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	var once bool
	stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gateway Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("gateway did not stop within 20 s")
		}
	}
	t.Cleanup(stop)
	return stop
}

// The spine, end to end: values set in simulated devices on real PTYs
// arrive exactly (decimal, scaled) at a subscriber of a real mosquitto.
func TestValuesArriveExactlyThroughMosquitto(t *testing.T) {
	broker := mosquittotest.Start(t)
	plat := newPlatform(t, broker.URL)

	unit := modbussim.NewUnit(3)
	if err := unit.SetFloat32(modbussim.HoldingRegisters, 0, 27.5, modbussim.ABCD); err != nil {
		t.Fatal(err)
	}
	unit.SetInput(10, int16ToU(-253)) // int16 -253 → -25.3 °C with scale 0.1
	unit.SetCoil(0, true)
	if err := unit.SetUint32(modbussim.HoldingRegisters, 2, 4000000123, modbussim.CDAB); err != nil {
		t.Fatal(err)
	}
	mbPath := serve(t, modbussim.NewBus(hardware.Mode{Baud: 9600}, unit))

	meter := dlt645sim.NewMeter("218231000114", dlt645sim.V2007)
	meter.Set("energy_kwh", "123456.78")
	meter.Set("voltage_a_v", "229.7")
	meter.Set("current_a_a", "-1.234")
	mePath := serve(t, dlt645sim.NewLine(hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}, meter))

	dir := t.TempDir()
	path := writeConfig(t, dir, broker.URL, `
- {name: RS485-1, port: "`+mbPath+`", baud: 9600}
- {name: RS485-2, port: "`+mePath+`", baud: 2400, parity: even}`, `
- id: chem-plant-3-outlet
  kind: enterprise
  driver: modbus
  line: RS485-1
  unit: 3
  interval: 300ms
  timeout: 100ms
  grid: "320583104001-02"
  points:
    - {name: cod_mg_l, table: holding, address: 0, type: float32, order: ABCD}
    - {name: temp_c, table: input, address: 10, type: int16, scale: 0.1}
    - {name: pump_running, table: coil, address: 0}
    - {name: flow_l, table: holding, address: 2, type: uint32, order: CDAB, scale: 0.001}
- id: office-meter
  kind: power
  driver: dlt645
  line: RS485-2
  address: "218231000114"
  interval: 1s
  timeout: 500ms
  read: [energy_kwh, voltage_a_v, current_a_a]`, "  metrics_listen: \""+freeAddr(t)+"\"\n")
	runGateway(t, path)

	plat.waitFor("a record from each device", 30*time.Second, func() bool {
		_, a := plat.latest(wire.StreamTelemetry, "chem-plant-3-outlet")
		_, b := plat.latest(wire.StreamTelemetry, "office-meter")
		return a && b
	})
	r, _ := plat.latest(wire.StreamTelemetry, "chem-plant-3-outlet")
	if r.Kind != "enterprise" || r.Grid != "320583104001-02" || r.Seq == 0 {
		t.Errorf("record header %+v", r)
	}
	want := map[string]wire.Value{
		"cod_mg_l":     wire.Float(27.5),
		"temp_c":       wire.Dec(-253, -1),
		"pump_running": wire.Bool(true),
		"flow_l":       wire.Dec(4000000123, -3),
	}
	for k, v := range want {
		if got := r.Vals[k]; !got.Equal(v) {
			t.Errorf("%s = %s (%v), want %s", k, got, got.Kind(), v)
		}
	}
	m, _ := plat.latest(wire.StreamTelemetry, "office-meter")
	for k, v := range map[string]string{"energy_kwh": "123456.78", "voltage_a_v": "229.7", "current_a_a": "-1.234"} {
		if got := m.Vals[k]; got.Kind() != wire.KindDecimal || got.String() != v {
			t.Errorf("meter %s = %s (kind %v), want exact decimal %s", k, got, got.Kind(), v)
		}
	}
	// A value changed in the device arrives changed.
	meter.Set("energy_kwh", "123457.01")
	plat.waitFor("the new energy reading", 20*time.Second, func() bool {
		m, _ := plat.latest(wire.StreamTelemetry, "office-meter")
		return m.Vals["energy_kwh"].String() == "123457.01"
	})
	plat.waitFor("status with both devices ok", 20*time.Second, func() bool {
		return plat.deviceState("chem-plant-3-outlet") == "ok" && plat.deviceState("office-meter") == "ok"
	})
	if bad := plat.malformed(); len(bad) > 0 {
		t.Errorf("malformed messages: %v", bad)
	}
	if rep := plat.settledReport(20 * time.Second); !rep.OK() {
		t.Errorf("audit: %s", rep)
	}
	cfg, _ := config.Load(path)
	resp, err := http.Get("http://" + cfg.Gateway.MetricsListen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`townlink_line_transactions_total{line="RS485-1",result="ok"}`, `townlink_device_up{device="office-meter"} 1`, `townlink_device_state{device="office-meter"} 2`, `townlink_device_reads_total{device="office-meter"}`, `townlink_device_errors_total{device="chem-plant-3-outlet"}`, `townlink_uplink_publish_seconds_count{stream="telemetry"}`, "townlink_uplink_connected 1"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func int16ToU(v int16) uint16 { return uint16(v) }

// A missing serial port, a silent sensor and a dead broker degrade one
// part each; the gateway keeps running and reports them.
func TestFaultsDegradeOnePart(t *testing.T) {
	broker := mosquittotest.Start(t)
	broker.Stop() // the county is unreachable when the gateway starts

	good := modbussim.NewUnit(1)
	good.SetHolding(0, 42)
	silent := modbussim.NewUnit(2)
	silent.SetHolding(0, 7)
	silent.SetFault(modbussim.Silent())
	path1 := serve(t, modbussim.NewBus(hardware.Mode{Baud: 9600}, good, silent))

	dir := t.TempDir()
	path := writeConfig(t, dir, broker.URL, `
- {name: RS485-1, port: "`+path1+`", baud: 9600}
- {name: RS485-9, port: /dev/ttyTOWNLINK-MISSING, baud: 9600}`, `
- {id: good, kind: enterprise, driver: modbus, line: RS485-1, unit: 1, interval: 200ms, timeout: 100ms, retries: 0, points: [{name: level_cm, table: holding, address: 0, type: uint16}]}
- {id: mute, kind: enterprise, driver: modbus, line: RS485-1, unit: 2, interval: 200ms, timeout: 100ms, retries: 0, points: [{name: level_cm, table: holding, address: 0, type: uint16}]}
- {id: unplugged, kind: enterprise, driver: modbus, line: RS485-9, unit: 1, interval: 2s, points: [{name: level_cm, table: holding, address: 0, type: uint16}]}`)
	runGateway(t, path)
	time.Sleep(2 * time.Second) // readings pile up while the broker is down

	broker.Restart(t)
	plat := newPlatform(t, broker.URL)
	plat.waitFor("mute down, unplugged down, good ok in status", 30*time.Second, func() bool {
		return plat.deviceState("good") == "ok" && plat.deviceState("mute") == "down" && plat.deviceState("unplugged") == "down"
	})
	// Everything queued during the outage arrives, from seq 1, no hole.
	plat.waitFor("the backlog from the outage", 30*time.Second, func() bool {
		r, ok := plat.latest(wire.StreamTelemetry, "good")
		return ok && r.Seq >= 5
	})
	plat.waitFor("a complete telemetry stream", 20*time.Second, func() bool {
		s, ok := plat.report().Stream("gw-test-01", wire.StreamTelemetry)
		return ok && s.Received > 0 && len(s.Missing) == 0
	})
	if _, ok := plat.latest(wire.StreamTelemetry, "mute"); ok {
		t.Error("a silent device produced a record")
	}
}

// A malformed config is refused with file:line:col; the gateway never starts.
func TestMalformedConfigIsRefusedWithPosition(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/bad.yaml"
	os.WriteFile(path, []byte("gateway:\n  id: GW_BAD\n  county: \"320583\"\n  township: \"320583104\"\nuplink:\n  brokers: [\"tcp://127.0.0.1:1\"]\n"), 0o644)
	_, err := config.Load(path)
	var errs config.Errors
	if !errors.As(err, &errs) || !strings.Contains(err.Error(), "bad.yaml:2:7") {
		t.Fatalf("err = %v, want an error at bad.yaml:2:7", err)
	}
}
