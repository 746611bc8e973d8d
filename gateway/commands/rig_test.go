package commands_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/modbus"
	"github.com/townlink/townlink/firmware-sim/modbussim"
	"github.com/townlink/townlink/gateway/bus"
	"github.com/townlink/townlink/gateway/commands"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serial"
	"github.com/townlink/townlink/hardware/serialsim"
	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/badgerq"
	"github.com/townlink/townlink/uplink/mqttpub"
	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
	"github.com/townlink/townlink/uplink/wire"
)

const (
	county, township, gwID = "320583", "320583104", "gw-cmd-01"
)

func topic(stream string) string { return wire.Topic(county, township, gwID, stream) }

// testClock is the gateway's injected clock: real time plus an offset the
// test moves forward.
type testClock struct{ off atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *testClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// pumpPoints is the simulated pump station's Modbus map.
var pumpPoints = []modbus.Point{
	{Name: "setpoint_cm", Table: modbus.Holding, Address: 0, Type: modbus.Uint16},
	{Name: "pump_on", Table: modbus.Coil, Address: 0},
	{Name: "level_cm", Table: modbus.Holding, Address: 1, Type: modbus.Uint16},
}

// rig is a gateway's command path built from real parts: Badger on disk,
// mosquitto, the line owner on a PTY with the simulated Modbus unit at
// the other end, and the cmd-result forwarder.
type rig struct {
	t      *testing.T
	dir    string
	broker *mosquittotest.Broker
	unit   *modbussim.Unit
	cfg    *config.Config
	clock  testClock
	synced atomic.Bool

	db      *badgerq.DB
	results *badgerq.Queue
	svc     *commands.Service
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	client  *mqttpub.Client
}

func newRig(t *testing.T, brokerOpts ...mosquittotest.Option) *rig {
	t.Helper()
	r := &rig{t: t, dir: t.TempDir(), broker: mosquittotest.Start(t, brokerOpts...), unit: modbussim.NewUnit(1)}
	r.synced.Store(true)
	r.unit.SetHolding(0, 0, 0)
	r.unit.SetCoil(0, false)
	pty, err := serialsim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); modbussim.NewBus(hardware.Mode{Baud: 9600}, r.unit).Serve(ctx, pty) }()
	t.Cleanup(func() { cancel(); <-done; pty.Close() })
	r.cfg = parseConfig(t, r.dir, r.broker.URL, pty.Path(), "")
	return r
}

// parseConfig is the test gateway's config; extraUplink is added to its
// uplink section.
func parseConfig(t *testing.T, dir, broker, port, extraUplink string) *config.Config {
	t.Helper()
	y := fmt.Sprintf(`gateway:
  id: %s
  county: "%s"
  township: "%s"
  data_dir: %q
uplink:
  brokers: [%q]
%slines:
  - {name: RS485-1, port: %q, baud: 9600}
devices:
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
      - {name: level_cm, table: holding, address: 1, type: uint16}
`, gwID, county, township, filepath.Join(dir, "data"), broker, extraUplink, port)
	cfg, err := config.Parse("test.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (r *rig) newModbus(p hardware.Port) (*modbus.Device, error) {
	return modbus.New(modbus.Config{Device: "pump-station", Unit: 1, Points: pumpPoints}, modbus.NewRTU(p, 200*time.Millisecond, 1))
}

// start runs the command path (again after stop: the store is reopened).
func (r *rig) start() {
	t := r.t
	t.Helper()
	db, err := badgerq.Open(badgerq.Options{Dir: filepath.Join(r.dir, "queue")})
	if err != nil {
		t.Fatal(err)
	}
	r.db = db
	if r.results, err = db.Stream(wire.StreamCmdResult, badgerq.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	kv, err := db.KV("cmd-seen")
	if err != nil {
		t.Fatal(err)
	}
	seen, err := commands.OpenSeen(kv, commands.SeenOptions{Now: r.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	lc := r.cfg.Lines[0]
	line, err := bus.New(bus.Config{
		Name: lc.Name, Mode: lc.Mode(),
		Devices: []bus.Device{{ID: "pump-station", Interval: time.Hour, New: func(p hardware.Port) (drivers.Poller, error) { return r.newModbus(p) }}},
		Emit:    func(context.Context, []drivers.Reading) error { return nil },
		Open:    func() (bus.Port, error) { return serial.Open(lc.Device, lc.Mode()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	dev := commands.OnLine(line, r.cfg.Devices[0], func(_ config.Device, p hardware.Port) (commands.PointWriter, error) { return r.newModbus(p) })
	r.svc, err = commands.New(commands.Options{
		Config: r.cfg, Devices: map[string]commands.Device{"pump-station": dev}, Lines: map[string]commands.Doer{lc.Name: line},
		Results: r.results, Seen: seen, Boot: "boot-1", Version: "test",
		Now: r.clock.Now, Synced: r.synced.Load, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	var fwd *uplink.Forwarder
	client, err := mqttpub.New(mqttpub.Options{
		Brokers: []string{r.broker.URL}, ClientID: gwID, PersistentSession: true,
		Backoff:   mqttpub.Backoff{Min: 100 * time.Millisecond, Max: time.Second},
		OnConnect: func() { fwd.Reconnected() },
	})
	if err != nil {
		t.Fatal(err)
	}
	r.client = client
	fwd, err = uplink.NewForwarder(uplink.ForwarderConfig{Queue: r.results, Publisher: client, Topic: topic(wire.StreamCmdResult),
		Frame: func(recs [][]byte) ([]byte, error) { return recs[0], nil }, MaxBatch: 1, MaxRetry: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	client.Start(ctx)
	if err := client.Subscribe(ctx, topic(wire.StreamCmd), func(_ string, p []byte) { r.svc.Receive(ctx, p) }); err != nil {
		t.Logf("subscribe will be retried on connect: %v", err)
	}
	for _, fn := range []func(context.Context) error{fwd.Run, line.Run, r.svc.Run} {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); fn(ctx) }()
	}
	t.Cleanup(r.stop)
}

// stop ends the command path cleanly (its MQTT session stays at the
// broker) and closes the store.
func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.wg.Wait()
	r.client.Close()
	if err := r.db.Close(); err != nil {
		r.t.Error(err)
	}
	r.cancel = nil
}

func testLogger(*testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// platform is the county's side: it sends commands and collects every
// answer in arrival order.
type platform struct {
	t       *testing.T
	c       *mqttpub.Client
	mu      sync.Mutex
	results map[string][][]byte
	n       int
}

func newPlatform(t *testing.T, url string, persistent bool) *platform {
	t.Helper()
	c, err := mqttpub.New(mqttpub.Options{Brokers: []string{url}, ClientID: "platform-" + t.Name(), PersistentSession: persistent,
		Backoff: mqttpub.Backoff{Min: 100 * time.Millisecond, Max: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); c.Close() })
	c.Start(ctx)
	p := &platform{t: t, c: c, results: map[string][][]byte{}}
	err = c.Subscribe(ctx, topic(wire.StreamCmdResult), func(_ string, b []byte) {
		r, err := wire.DecodeCommandResult(b)
		if err != nil {
			t.Errorf("cmd-result: %v", err)
			return
		}
		p.mu.Lock()
		p.results[r.ID] = append(p.results[r.ID], append([]byte(nil), b...))
		p.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *platform) send(c *wire.Command) {
	p.t.Helper()
	b, err := wire.EncodeCommand(c)
	if err != nil {
		p.t.Fatal(err)
	}
	p.sendRaw(b)
}

func (p *platform) sendRaw(b []byte) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.c.Publish(ctx, topic(wire.StreamCmd), b); err != nil {
		p.t.Fatal(err)
	}
}

// wait returns the n-th answer to id (1-based), waiting up to 30 s.
func (p *platform) wait(id string, n int) (*wire.CommandResult, []byte) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for ; ; time.Sleep(10 * time.Millisecond) {
		p.mu.Lock()
		rs := p.results[id]
		p.mu.Unlock()
		if len(rs) >= n {
			r, _ := wire.DecodeCommandResult(rs[n-1])
			return r, rs[n-1]
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no answer #%d to %s (got %d)", n, id, len(rs))
		}
	}
}

// ready pings until the gateway answers, so that it is subscribed.
func (p *platform) ready() {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p.n++
		id := fmt.Sprintf("ping-%d", p.n)
		b, _ := wire.EncodeCommand(&wire.Command{ID: id, Op: wire.OpPing})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		p.c.Publish(ctx, topic(wire.StreamCmd), b) // retried until answered: not connected yet is fine
		cancel()
		for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			p.mu.Lock()
			got := len(p.results[id]) > 0
			p.mu.Unlock()
			if got {
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatal("the gateway never answered a ping")
		}
	}
}
