package gateway_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/firmware-sim/modbussim"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/uplink/mqttpub"
	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
	"github.com/townlink/townlink/uplink/wire"
)

// withUplink adds lines to the uplink section of a config written by
// writeConfig.
func withUplink(t *testing.T, path, extra string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "  backoff: {min: 100ms, max: 1s}\n", "  backoff: {min: 100ms, max: 1s}\n"+extra, 1)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A disk quota filled during a long outage: the gateway keeps running,
// gap records cover every dropped telemetry seq, status reports the drops
// by reason, and nothing else is missing.
func TestQuotaDuringOutageLeavesGapRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: waits 8 s for an outage backlog to fill the quota; make test runs it")
	}
	broker := mosquittotest.Start(t)
	broker.Stop()
	unit := modbussim.NewUnit(1)
	n := uint16(0)
	unit.Animate(func(time.Time, *modbussim.Unit) { n++; unit.SetHolding(0, n) })
	unit.SetHolding(0, 0)
	ptyPath := serve(t, modbussim.NewBus(hardware.Mode{Baud: 9600}, unit))
	dir := t.TempDir()
	path := writeConfig(t, dir, broker.URL, `
- {name: RS485-1, port: "`+ptyPath+`", baud: 9600}`, `
- {id: counter, kind: enterprise, driver: modbus, line: RS485-1, unit: 1, interval: 100ms, timeout: 50ms, points: [{name: n, table: holding, address: 0, type: uint16}]}`)
	withUplink(t, path, "  quota: {telemetry: 4KiB}\n")
	runGateway(t, path)
	time.Sleep(8 * time.Second) // ~80 readings of ~70 bytes: more than 4 KiB of telemetry

	broker.Restart(t)
	plat := newPlatform(t, broker.URL)
	plat.waitFor("gap records and live telemetry", 60*time.Second, func() bool {
		s, ok := plat.report().Stream("gw-test-01", wire.StreamTelemetry)
		return ok && len(s.Covered) > 0 && len(s.Missing) == 0 && s.MaxSeq > 40
	})
	plat.waitFor("drops by reason in the status", 30*time.Second, func() bool {
		plat.mu.Lock()
		defer plat.mu.Unlock()
		return plat.status != nil && plat.status.Dropped["quota"] > 0
	})
	s, _ := plat.report().Stream("gw-test-01", wire.StreamTelemetry)
	t.Logf("telemetry: max seq %d, received %d, covered by gap records %v", s.MaxSeq, s.Received, s.Covered)
	if !s.OK() {
		t.Errorf("telemetry stream: %+v", s)
	}
}

// ack: platform — nothing is deleted from the gateway until the platform
// says it has stored it.
func TestPlatformAckMode(t *testing.T) {
	broker := mosquittotest.Start(t)
	plat := newPlatform(t, broker.URL)
	unit := modbussim.NewUnit(1)
	unit.SetHolding(0, 5)
	ptyPath := serve(t, modbussim.NewBus(hardware.Mode{Baud: 9600}, unit))
	dir := t.TempDir()
	path := writeConfig(t, dir, broker.URL, `
- {name: RS485-1, port: "`+ptyPath+`", baud: 9600}`, `
- {id: m1, kind: enterprise, driver: modbus, line: RS485-1, unit: 1, interval: 200ms, timeout: 100ms, points: [{name: n, table: holding, address: 0, type: uint16}]}`)
	withUplink(t, path, "  ack: platform\n")
	runGateway(t, path)

	backlog := func() (uint64, bool) {
		plat.mu.Lock()
		defer plat.mu.Unlock()
		if plat.status == nil {
			return 0, false
		}
		return plat.status.Backlog[wire.StreamTelemetry], true
	}
	plat.waitFor("ten records at the platform and a backlog kept by the gateway", 30*time.Second, func() bool {
		r, ok := plat.latest(wire.StreamTelemetry, "m1")
		b, sok := backlog()
		return ok && r.Seq >= 10 && sok && b >= 10
	})
	// The device falls silent: no more records; the gateway still holds
	// every one it sent, waiting for the platform.
	unit.SetFault(modbussim.Silent())
	time.Sleep(time.Second)
	plat.waitFor("the backlog to stay while nothing is acknowledged", 30*time.Second, func() bool {
		r, _ := plat.latest(wire.StreamTelemetry, "m1")
		b, ok := backlog()
		return ok && b >= r.Seq
	})
	// The platform acknowledges everything it has stored.
	ack, err := mqttpub.New(mqttpub.Options{Brokers: []string{broker.URL}, ClientID: "platform-acker"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ack.Start(ctx)
	defer ack.Close()
	plat.waitFor("the acker connected", 10*time.Second, ack.Connected)
	r, _ := plat.latest(wire.StreamTelemetry, "m1")
	upto := r.Seq
	p, err := wire.EncodeAck(&wire.PlatformAck{Stream: wire.StreamTelemetry, Upto: upto})
	if err != nil {
		t.Fatal(err)
	}
	if err := ack.Publish(ctx, wire.Topic("320583", "320583104", "gw-test-01", wire.StreamAck), p); err != nil {
		t.Fatal(err)
	}
	plat.waitFor("the gateway to delete what the platform acknowledged", 30*time.Second, func() bool {
		b, ok := backlog()
		return ok && b == 0
	})
}
