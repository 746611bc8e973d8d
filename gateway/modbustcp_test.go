package gateway_test

import (
	"testing"
	"time"

	"github.com/townlink/townlink/internal/testkit"
	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
	"github.com/townlink/townlink/uplink/wire"
)

// A Modbus TCP device (Debian's pymodbus TCP server, which nobody here
// wrote) polled by the gateway: its registers arrive exactly.
func TestModbusTCPDevice(t *testing.T) {
	port := testkit.StartPython(t, []string{"pymodbus.server", "pymodbus.datastore", "pymodbus.payload", "serial_asyncio"},
		"../drivers/modbus/testdata/pymodbus_server.py", "tcp")

	broker := mosquittotest.Start(t)
	plat := newPlatform(t, broker.URL)
	path := writeConfig(t, t.TempDir(), broker.URL, `
- {name: RS485-1, port: /dev/null, baud: 9600}`, `
- id: pump-house-tcp
  kind: enterprise
  driver: modbus-tcp
  host: "127.0.0.1:`+port+`"
  unit: 1
  interval: 300ms
  timeout: 200ms
  outputs: [temp_c]
  points:
    - {name: temp_c, table: holding, address: 1, type: uint16, scale: 0.1}
    - {name: f32, table: holding, address: 4, type: float32}
    - {name: energy_kwh, table: holding, address: 14, type: uint32, scale: 0.001}`)
	runGateway(t, path)
	plat.waitFor("a record from the TCP device", 30*time.Second, func() bool {
		_, ok := plat.latest(wire.StreamTelemetry, "pump-house-tcp")
		return ok
	})
	r, _ := plat.latest(wire.StreamTelemetry, "pump-house-tcp")
	for k, want := range map[string]string{"temp_c": "25.3", "f32": "12.5", "energy_kwh": "4000000.000"} {
		if got := r.Vals[k].String(); got != want {
			t.Errorf("%s = %s, want %s", k, got, want)
		}
	}
	plat.waitFor("the TCP device ok in status", 20*time.Second, func() bool { return plat.deviceState("pump-house-tcp") == "ok" })

	// The platform reads it now and sets its output, as on a serial line.
	cm := newCommander(t, broker.URL)
	if r := cm.do("read", "pump-house-tcp", nil); !r.OK || r.Vals["temp_c"].String() != "25.3" {
		t.Errorf("read = %+v", r)
	}
	if r := cm.do("set", "pump-house-tcp", map[string]wire.Value{"point": wire.Text("temp_c"), "value": wire.Dec(301, -1)}); !r.OK || r.Status != wire.ResultDone {
		t.Errorf("set = %+v", r)
	}
	if r := cm.do("read", "pump-house-tcp", nil); !r.OK || r.Vals["temp_c"].String() != "30.1" {
		t.Errorf("read after set = %+v", r)
	}
	if r := cm.do("set", "pump-house-tcp", map[string]wire.Value{"point": wire.Text("f32"), "value": wire.Int(1)}); r.OK || r.Status != wire.ResultRefused {
		t.Errorf("set of a non-output = %+v", r)
	}
}
