package gateway_test

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/townlink/townlink/firmware-sim/modbussim"
	"github.com/townlink/townlink/gateway"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
	"github.com/townlink/townlink/uplink/wire"
)

const childEnv = "TOWNLINK_TEST_GATEWAY_CONFIG"

// TestMain lets a test start the gateway as a child process (the test
// binary re-executed) that it can kill -9.
func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		cfg, err := config.Load(path)
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(3)
		}
		g, err := gateway.New(cfg, nil)
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(3)
		}
		g.Run(context.Background()) // until killed
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func startChild(t *testing.T, path string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func kill9(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
}

// kill -9 the gateway while the broker is down, restart it, start the
// broker: the subscriber sees every seq from 1 with no hole.
func TestKill9DuringOutageLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: kill -9 of a gateway child process; make test runs it")
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

	for round := 0; round < 3; round++ {
		child := startChild(t, path)
		time.Sleep(time.Duration(800+300*round) * time.Millisecond)
		kill9(t, child)
	}
	restarted := time.Now()

	broker.Restart(t)
	plat := newPlatform(t, broker.URL)
	startChild(t, path)

	plat.waitFor("the backlog queued before the kills, then live records", 60*time.Second, func() bool {
		r, ok := plat.latest(wire.StreamTelemetry, "counter")
		return ok && r.TS > restarted.Add(500*time.Millisecond).UnixMilli()
	})
	plat.waitFor("no hole in telemetry", 30*time.Second, func() bool {
		s, ok := plat.report().Stream("gw-test-01", wire.StreamTelemetry)
		return ok && len(s.Missing) == 0 && len(s.Conflicts) == 0
	})
	s, _ := plat.report().Stream("gw-test-01", wire.StreamTelemetry)
	before := 0
	plat.mu.Lock()
	for _, r := range plat.recs[wire.StreamTelemetry] {
		if r.TS < restarted.UnixMilli() {
			before++
		}
	}
	plat.mu.Unlock()
	t.Logf("telemetry: %d distinct seqs up to %d, %d duplicates, %d records from before the last kill", s.Received, s.MaxSeq, s.Duplicates, before)
	if before < 10 {
		t.Errorf("only %d records from the three killed runs reached the platform", before)
	}
	if s.Received != s.MaxSeq || len(s.Covered) != 0 {
		t.Errorf("received %d of 1..%d (covered %v): seqs must be contiguous from 1", s.Received, s.MaxSeq, s.Covered)
	}
}

// A gateway that vanishes (kill -9) is marked offline by its last will.
func TestLastWillMarksOffline(t *testing.T) {
	broker := mosquittotest.Start(t)
	plat := newPlatform(t, broker.URL)
	unit := modbussim.NewUnit(1)
	unit.SetHolding(0, 1)
	ptyPath := serve(t, modbussim.NewBus(hardware.Mode{Baud: 9600}, unit))
	path := writeConfig(t, t.TempDir(), broker.URL, `
- {name: RS485-1, port: "`+ptyPath+`", baud: 9600}`, `
- {id: m1, kind: enterprise, driver: modbus, line: RS485-1, unit: 1, interval: 200ms, timeout: 100ms, points: [{name: n, table: holding, address: 0, type: uint16}]}`)
	child := startChild(t, path)
	state := func() string {
		plat.mu.Lock()
		defer plat.mu.Unlock()
		if plat.status == nil {
			return ""
		}
		return plat.status.State
	}
	plat.waitFor("status online", 30*time.Second, func() bool { return state() == "online" })
	kill9(t, child)
	plat.waitFor("the last will: status offline", 60*time.Second, func() bool { return state() == "offline" })
}
