package gateway_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/firmware-sim/modbussim"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/uplink/mqttpub"
	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
	"github.com/townlink/townlink/uplink/wire"
)

// commander is the platform's command client.
type commander struct {
	t       *testing.T
	c       *mqttpub.Client
	mu      sync.Mutex
	results map[string]*wire.CommandResult
	n       int
}

func newCommander(t *testing.T, url string) *commander {
	t.Helper()
	c, err := mqttpub.New(mqttpub.Options{Brokers: []string{url}, ClientID: fmt.Sprintf("platform-cmd-%d", time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); c.Close() })
	c.Start(ctx)
	cm := &commander{t: t, c: c, results: map[string]*wire.CommandResult{}}
	err = c.Subscribe(ctx, wire.Topic("320583", "320583104", "gw-test-01", wire.StreamCmdResult), func(_ string, p []byte) {
		r, err := wire.DecodeCommandResult(p)
		if err != nil {
			t.Errorf("cmd-result: %v", err)
			return
		}
		cm.mu.Lock()
		cm.results[r.ID] = r
		cm.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

func (cm *commander) do(op, dev string, args map[string]wire.Value) *wire.CommandResult {
	cm.t.Helper()
	cm.n++
	id := fmt.Sprintf("c%d", cm.n)
	b, err := wire.EncodeCommand(&wire.Command{ID: id, Op: op, Dev: dev, Args: args})
	if err != nil {
		cm.t.Fatal(err)
	}
	topic := wire.Topic("320583", "320583104", "gw-test-01", wire.StreamCmd)
	deadline := time.Now().Add(30 * time.Second)
	var next time.Time
	for ; ; time.Sleep(20 * time.Millisecond) {
		cm.mu.Lock()
		r := cm.results[id]
		cm.mu.Unlock()
		if r != nil {
			return r
		}
		if time.Now().After(deadline) {
			cm.t.Fatalf("no result for %s %s", op, dev)
		}
		// Resend until the gateway has subscribed (commands are idempotent here).
		if time.Now().After(next) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			cm.c.Publish(ctx, topic, b)
			cancel()
			next = time.Now().Add(2 * time.Second)
		}
	}
}

func TestCommandsFromThePlatform(t *testing.T) {
	broker := mosquittotest.Start(t)
	unit := modbussim.NewUnit(1)
	unit.SetHolding(0, 250)
	unit.SetCoil(0, false)
	ptyPath := serve(t, modbussim.NewBus(hardware.Mode{Baud: 9600}, unit))
	dir := t.TempDir()
	pw := filepath.Join(dir, "uplink.pw")
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	path := writeConfig(t, dir, broker.URL, `
- {name: RS485-1, port: "`+ptyPath+`", baud: 9600}`, `
- id: pump-station
  kind: enterprise
  driver: modbus
  line: RS485-1
  unit: 1
  interval: 1h
  timeout: 200ms
  outputs: [pump_on, setpoint_cm]
  points:
    - {name: setpoint_cm, table: holding, address: 0, type: uint16}
    - {name: pump_on, table: coil, address: 0}
    - {name: level_cm, table: holding, address: 1, type: uint16}`)
	runGateway(t, path)
	cm := newCommander(t, broker.URL)

	if r := cm.do("ping", "", nil); !r.OK || r.Status != wire.ResultDone || r.Vals["version"].String() == "" {
		t.Errorf("ping = %+v", r)
	}
	unit.SetHolding(0, 321)
	unit.SetHolding(1, 77)
	if r := cm.do("read", "pump-station", nil); !r.OK || r.Vals["setpoint_cm"].String() != "321" || r.Vals["level_cm"].String() != "77" {
		t.Errorf("read = %+v", r)
	}
	if r := cm.do("set", "pump-station", map[string]wire.Value{"point": wire.Text("pump_on"), "value": wire.Bool(true)}); !r.OK {
		t.Errorf("set pump_on = %+v", r)
	}
	if on, _ := unit.Coil(0); !on {
		t.Error("the coil was not written")
	}
	if r := cm.do("set", "pump-station", map[string]wire.Value{"point": wire.Text("setpoint_cm"), "value": wire.Int(400)}); !r.OK {
		t.Errorf("set setpoint = %+v", r)
	}
	if v, _ := unit.Holding(0); v != 400 {
		t.Errorf("holding 0 = %d, want 400", v)
	}
	if r := cm.do("set", "pump-station", map[string]wire.Value{"point": wire.Text("level_cm"), "value": wire.Int(1)}); r.OK || !strings.Contains(r.Err, "not an output the config allows") {
		t.Errorf("set of a non-output = %+v", r)
	}
	if r := cm.do("reboot", "", nil); r.OK || r.Status != wire.ResultRefused || !strings.Contains(r.Err, `unknown operation "reboot"`) {
		t.Errorf("unknown op = %+v", r)
	}
	r := cm.do("config", "", nil)
	if !r.OK || !strings.Contains(r.Vals["config"].String(), "pump-station") {
		t.Errorf("config = %+v", r)
	}
	if strings.Contains(r.Vals["config"].String(), "s3cret") {
		t.Error("config leaks a secret")
	}
	// The answer is the config file itself, as townlink check reads it.
	if back, err := config.Parse("from-platform.yaml", []byte(r.Vals["config"].String())); err != nil {
		t.Errorf("the config answer does not load: %v", err)
	} else if back.Devices[0].ID != "pump-station" || len(back.Devices[0].Points) != 3 {
		t.Errorf("config answer devices = %+v", back.Devices)
	}
}

// A command sent while the gateway is away waits in its persistent
// session and is answered when it is back.
func TestCommandQueuedWhileGatewayAway(t *testing.T) {
	broker := mosquittotest.Start(t)
	unit := modbussim.NewUnit(1)
	unit.SetHolding(0, 1)
	ptyPath := serve(t, modbussim.NewBus(hardware.Mode{Baud: 9600}, unit))
	path := writeConfig(t, t.TempDir(), broker.URL, `
- {name: RS485-1, port: "`+ptyPath+`", baud: 9600}`, `
- {id: m1, kind: enterprise, driver: modbus, line: RS485-1, unit: 1, interval: 1h, timeout: 200ms, points: [{name: n, table: holding, address: 0, type: uint16}]}`)
	cm := newCommander(t, broker.URL)
	stop := runGateway(t, path)
	if r := cm.do("ping", "", nil); !r.OK {
		t.Fatalf("ping = %+v", r)
	}
	stop() // a clean stop: the session stays at the broker

	b, _ := wire.EncodeCommand(&wire.Command{ID: "while-away", Op: "ping"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cm.c.Publish(ctx, wire.Topic("320583", "320583104", "gw-test-01", wire.StreamCmd), b); err != nil {
		t.Fatal(err)
	}
	runGateway(t, path)
	deadline := time.Now().Add(30 * time.Second)
	for {
		cm.mu.Lock()
		r := cm.results["while-away"]
		cm.mu.Unlock()
		if r != nil {
			if !r.OK {
				t.Errorf("queued ping = %+v", r)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the command sent while the gateway was away was never answered")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
