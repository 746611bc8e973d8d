package gateway_test

// The soak test (issue 5): kill -9 the gateway at random moments while a
// load generator feeds it and the county broker comes and goes; afterwards
// every seq of every stream reached the platform or is covered by a gap
// record, and nothing the gateway committed to its queue is missing.
//
// Who may lose what. The gateway's promise ends at the broker's PUBACK; what
// the broker does after that is not the gateway's doing. mosquitto is
// stopped with SIGKILL (mosquittotest.Stop), so any message it has PUBACKed
// but not yet handed to a subscriber dies with it, persistence on or off,
// and a subscriber that is not subscribed when a message arrives never gets
// it. A missing seq must therefore mean the gateway lost it, never the
// broker. The test arranges that as follows (instead of a persistent
// session, which a SIGKILLed mosquitto can still lose unsaved):
//
//   - The platform is a clean-session QoS 1 subscriber connected straight to
//     mosquitto (unlimited in-flight and queued messages, so mosquitto never
//     drops for a slow subscriber). It reconnects by itself (mqttpub, short
//     backoff) and counts its connections: mqttpub calls OnConnect only once
//     the subscription has been renewed (SUBACK).
//   - mosquitto is stopped and started only while the gateway child is dead
//     (the cycle is: run, kill -9, maybe toggle the broker, restart). Before
//     a stop the test waits until the platform has stopped receiving, so
//     nothing PUBACKed is still on its way; after a start it waits for the
//     platform's next (re)subscription before the gateway can run again. So
//     whenever the gateway can publish, the platform is subscribed.
//   - The gateway's link is cut or stalled at random moments while it
//     publishes, through a TCP proxy (mosquittotest.Proxy) between the
//     gateway and the broker: a Cut drops the connection with publishes in
//     flight; a Hold withholds PUBACKs (the broker has delivered the messages
//     to the platform) until the kill, so the restarted gateway must resend
//     them (duplicates, never holes). The broker itself stays up, so nothing
//     is lost on its side.
//
// The kills come 0-2.5 s after each start (one in five within 300 ms:
// during start-up and store recovery). A gateway that exits by itself (it
// failed to start) fails the test: Badger v4.9.6 can refuse to open a store
// once after a kill -9 that left an empty .mem or .vlog file ("Create a new
// file", dgraph-io/badger#2207), which badgerq.Open now retries.
//
// "Nothing accepted is missing": after the final kill the test opens the
// gateway's queue (uplink/badgerq on data_dir/queue; badgerq has no
// read-only mode, but the gateway is dead and nothing is appended) and
// checks, per stream, that the platform's highest seq equals the queue's
// LastSeq (lower: committed records never arrived; higher: the gateway
// forgot seqs it had committed and published) and that 1..LastSeq has no
// hole and no conflicting copy.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/townlink/townlink/firmware-sim/modbussim"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/uplink/badgerq"
	"github.com/townlink/townlink/uplink/mqttpub"
	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
	"github.com/townlink/townlink/uplink/wire"
)

// Soak sizes: TOWNLINK_SOAK=1 (make soak) runs the long version;
// TOWNLINK_SOAK_SEED=<n> replays a logged schedule.
const (
	soakEnv       = "TOWNLINK_SOAK"
	soakSeedEnv   = "TOWNLINK_SOAK_SEED"
	soakCycles    = 100
	shortCycles   = 5
	soakLines     = 3
	unitsPerLine  = 4
	soakGatewayID = "gw-test-01" // writeConfig's gateway id
)

func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: soak cycles of kill -9 and broker outages; make test runs it")
	}
	cycles := shortCycles
	if os.Getenv(soakEnv) == "1" {
		cycles = soakCycles
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(soakSeedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", soakSeedEnv, s, err)
		}
		seed = v
	}
	t.Logf("soak: %d cycles, seed %d (replay with %s=%d)", cycles, seed, soakSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	began := time.Now()

	broker := mosquittotest.Start(t, mosquittotest.WithLimits(0, 0))
	proxy := mosquittotest.NewProxy(t, broker.Addr)
	plat := newSoakPlatform(t, broker.URL)

	// The load generator: 3 lines with 4 Modbus units each, polled every
	// 100 ms: 120 readings/s while the units answer and the CPU keeps up.
	var units []*modbussim.Unit
	var lines, devices []string
	for l := 1; l <= soakLines; l++ {
		var bus []*modbussim.Unit
		for u := 1; u <= unitsPerLine; u++ {
			unit := modbussim.NewUnit(byte(u))
			var n uint16 // touched only by this bus's Serve goroutine
			unit.Animate(func(_ time.Time, u *modbussim.Unit) { n++; u.SetHolding(0, n, n*7) })
			unit.SetHolding(0, 0, 0)
			bus = append(bus, unit)
			devices = append(devices, fmt.Sprintf(
				`- {id: l%dm%d, kind: enterprise, driver: modbus, line: RS485-%d, unit: %d, interval: 100ms, timeout: 80ms, points: [{name: n, table: holding, address: 0, type: uint16}, {name: m, table: holding, address: 1, type: uint16}]}`,
				l, u, l, u))
		}
		units = append(units, bus...)
		ptyPath := serve(t, modbussim.NewBus(hardware.Mode{Baud: 38400}, bus...))
		lines = append(lines, fmt.Sprintf(`- {name: RS485-%d, port: %q, baud: 38400}`, l, ptyPath))
	}
	dir := t.TempDir()
	// The gateway reaches the broker through the proxy; the platform does not.
	path := writeConfig(t, dir, proxy.URL, strings.Join(lines, "\n"), strings.Join(devices, "\n"))

	brokerUp := true
	var stops, starts, holds, cuts, downKills, failedStarts int
	for i := 0; i < cycles; i++ {
		child := startSoakChild(t, path)
		run := time.Duration(rng.Int64N(int64(2500 * time.Millisecond)))
		if rng.IntN(5) == 0 { // sometimes during start-up and store recovery
			run = time.Duration(rng.Int64N(int64(300 * time.Millisecond)))
		}
		event := "none"
		if brokerUp {
			switch rng.IntN(4) {
			case 0:
				event = "hold"
			case 1:
				event = "cut"
			}
		}
		if event == "none" {
			time.Sleep(run)
		} else {
			at := time.Duration(rng.Int64N(int64(run) + 1))
			time.Sleep(at)
			if event == "hold" {
				proxy.Hold() // PUBACKs withheld until the kill
				holds++
			} else {
				proxy.Cut() // publishes in flight, the gateway reconnects
				cuts++
			}
			time.Sleep(run - at)
		}
		if out, exited := child.kill(); exited {
			failedStarts++
			t.Errorf("cycle %d: the gateway had exited by itself before the kill (a failed start after the previous kill -9): %s", i+1, out)
		}
		if !brokerUp {
			downKills++
		}
		proxy.Cut() // drop the withheld PUBACKs and the dead child's relays

		toggle := rng.IntN(2) == 0
		if i == 1 && stops == 0 && brokerUp {
			toggle = true // every run has at least one outage
		}
		action := "-"
		if toggle {
			if brokerUp {
				plat.settle()
				broker.Stop()
				stops++
				action = "broker stopped"
			} else {
				plat.restartBroker(broker)
				starts++
				action = "broker started"
			}
			brokerUp = !brokerUp
		}
		t.Logf("cycle %d: ran %v, link event %s, killed; %s", i+1, run.Round(time.Millisecond), event, action)
	}

	// The end: broker up, gateway up, then the load stops (every unit goes
	// silent) so the backlog can drain to nothing.
	if !brokerUp {
		plat.restartBroker(broker)
		starts++
	}
	// Like a service manager, start the gateway again if it fails to start.
	var child *soakChild
	finalStart := time.Now()
	for attempt := 1; ; attempt++ {
		child = startSoakChild(t, path)
		plat.waitFor("live telemetry from the final gateway run (backlog drained first)", 120*time.Second, func() bool {
			return plat.telemetryAfter(finalStart) || child.exited()
		})
		if !child.exited() {
			break
		}
		out, _ := child.kill()
		failedStarts++
		t.Errorf("final run: the gateway failed to start (attempt %d): %s", attempt, out)
		if attempt == 3 {
			t.Fatalf("the gateway failed to start %d times in a row after the last kill -9", attempt)
		}
	}
	// Let the load run a while to measure its rate (a figure, not a check).
	rateFrom := time.Now()
	time.Sleep(3 * time.Second)
	for _, u := range units {
		u.SetFault(modbussim.Silent())
	}
	silenced := time.Now()
	plat.waitFor("a status after the load stopped: every device down, every backlog 0", 120*time.Second, func() bool {
		return plat.drained(silenced.Add(time.Second))
	})
	plat.settle()
	if out, exited := child.kill(); exited {
		t.Fatalf("the final gateway run ended by itself: %s", out)
	}
	rate := float64(plat.telemetryBetween(rateFrom, silenced)) / silenced.Sub(rateFrom).Seconds()

	committed := queueStats(t, filepath.Join(dir, "data", "queue"))
	rep := plat.report()
	if bad := plat.malformed(); len(bad) > 0 {
		t.Errorf("%d malformed messages on the uplink, first: %s", len(bad), bad[0])
	}
	var records, dups uint64
	for _, name := range soakStreams {
		st := committed[name]
		s, ok := rep.Stream(soakGatewayID, name)
		if !ok {
			if st.LastSeq > 0 {
				t.Errorf("%s: the gateway committed seqs 1..%d, the platform received none", name, st.LastSeq)
			}
			continue
		}
		records += s.Received
		dups += s.Duplicates
		t.Logf("%s: committed 1..%d (backlog %d at the end); platform: %d distinct seqs, %d duplicates, max seq %d, covered by gaps %v",
			name, st.LastSeq, st.Backlog, s.Received, s.Duplicates, s.MaxSeq, s.Covered)
		if len(s.Missing) > 0 || len(s.Conflicts) > 0 || s.Invalid > 0 {
			t.Errorf("%s: missing %v, conflicting seqs %v, invalid %d", name, s.Missing, s.Conflicts, s.Invalid)
		}
		if s.MaxSeq < st.LastSeq {
			t.Errorf("%s: the gateway committed seqs up to %d but the platform saw only up to %d: accepted records are missing", name, st.LastSeq, s.MaxSeq)
		}
		if s.MaxSeq > st.LastSeq {
			t.Errorf("%s: the platform saw seq %d but the gateway's queue ends at %d: committed seqs were forgotten after a kill", name, s.MaxSeq, st.LastSeq)
		}
	}
	tel := committed[wire.StreamTelemetry]
	if tel.LastSeq == 0 {
		t.Error("the load generator produced no telemetry at all")
	}
	t.Logf("soak: %d cycles (%d kills with the broker down), broker stopped %d and started %d times, link held %d and cut %d times, %d failed gateway starts; %d records, %d duplicates; load %.0f readings/s; %v",
		cycles, downKills, stops, starts, holds, cuts, failedStarts, records, dups, rate, time.Since(began).Round(time.Second))
	if t.Failed() {
		t.Logf("platform report:\n%s", rep)
	}
}

var soakStreams = []string{wire.StreamTelemetry, wire.StreamEvents, wire.StreamAlarms, wire.StreamEvidence}

// soakPlatform is the platform of e2e_helpers_test.go with a short
// reconnect backoff, a count of (re)subscriptions and of messages.
type soakPlatform struct {
	*platform
	connects atomic.Int64 // connections with the subscription renewed
	msgs     atomic.Int64 // messages received
}

func newSoakPlatform(t *testing.T, brokerURL string) *soakPlatform {
	t.Helper()
	p := &soakPlatform{platform: &platform{t: t, audit: wire.NewAudit(), recs: map[string][]wire.Record{}}}
	c, err := mqttpub.New(mqttpub.Options{
		Brokers:   []string{brokerURL},
		ClientID:  fmt.Sprintf("soak-platform-%d", time.Now().UnixNano()),
		Backoff:   mqttpub.Backoff{Min: 50 * time.Millisecond, Max: 500 * time.Millisecond},
		OnConnect: func() { p.connects.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); c.Close() })
	c.Start(ctx)
	err = c.Subscribe(ctx, "townlink/v1/#", func(topic string, payload []byte) {
		p.msgs.Add(1)
		p.handle(topic, payload)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Subscribe either subscribed on the open connection or left it to the
	// connection goroutine, which renews it before OnConnect.
	p.waitFor("platform subscribed", 20*time.Second, func() bool { return p.connects.Load() > 0 })
	return p
}

// restartBroker starts the broker and waits until the platform has
// resubscribed, so that nothing the gateway publishes next is dropped by
// the broker for want of a subscriber.
func (p *soakPlatform) restartBroker(b *mosquittotest.Broker) {
	p.t.Helper()
	before := p.connects.Load()
	b.Restart(p.t)
	p.waitFor("platform resubscribed after the broker restart", 30*time.Second, func() bool {
		return p.connects.Load() > before
	})
}

// settle waits (up to 15 s, without failing) until no message has arrived
// for 300 ms: whatever the broker had acknowledged has been delivered.
func (p *soakPlatform) settle() {
	deadline := time.Now().Add(15 * time.Second)
	last, since := p.msgs.Load(), time.Now()
	for time.Now().Before(deadline) && time.Since(since) < 300*time.Millisecond {
		time.Sleep(20 * time.Millisecond)
		if n := p.msgs.Load(); n != last {
			last, since = n, time.Now()
		}
	}
}

// telemetryAfter reports whether a telemetry record taken after t arrived.
func (p *soakPlatform) telemetryAfter(t time.Time) bool {
	ms := t.UnixMilli()
	p.mu.Lock()
	defer p.mu.Unlock()
	rs := p.recs[wire.StreamTelemetry]
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].TS > ms {
			return true
		}
	}
	return false
}

// telemetryBetween counts the distinct telemetry records taken in (from, to].
func (p *soakPlatform) telemetryBetween(from, to time.Time) int {
	lo, hi := from.UnixMilli(), to.UnixMilli()
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := map[uint64]bool{}
	for _, r := range p.recs[wire.StreamTelemetry] {
		if r.TS > lo && r.TS <= hi {
			seen[r.Seq] = true
		}
	}
	return len(seen)
}

// drained reports whether an online status stamped after t says that every
// device is down (no more readings) and every stream's backlog is 0.
func (p *soakPlatform) drained(t time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.status
	if st == nil || st.State != wire.StateOnline || st.TS <= t.UnixMilli() || len(st.Backlog) == 0 {
		return false
	}
	for _, n := range st.Backlog {
		if n != 0 {
			return false
		}
	}
	for _, s := range st.Devices {
		if s != wire.DeviceDown {
			return false
		}
	}
	return true
}

// queueStats opens the dead gateway's queue and returns every stream's
// counters.
func queueStats(t *testing.T, dir string) map[string]badgerq.Stats {
	t.Helper()
	db, err := badgerq.Open(badgerq.Options{Dir: dir})
	if err != nil {
		t.Fatalf("open the gateway's queue after the final kill: %v", err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Errorf("close the gateway's queue: %v", err)
		}
	}()
	out := make(map[string]badgerq.Stats, len(soakStreams))
	for _, name := range soakStreams {
		q, err := db.Stream(name, badgerq.StreamOptions{})
		if err != nil {
			t.Fatalf("stream %s of the gateway's queue: %v", name, err)
		}
		out[name] = q.Stats()
	}
	return out
}

// soakChild is the gateway as a child process (TestMain in crash_test.go)
// whose exit is watched, so that a gateway that fails to start is told
// apart from one that was killed.
type soakChild struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer  // written by exec's copier until done
	done   chan struct{} // closed once cmd.Wait has returned
}

func startSoakChild(t *testing.T, path string) *soakChild {
	t.Helper()
	c := &soakChild{cmd: exec.Command(os.Args[0], "-test.run=^$"), done: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), childEnv+"="+path)
	c.cmd.Stderr = &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { // owned by c: kill (also run by t.Cleanup) waits for it
		c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() { c.kill() })
	return c
}

// exited reports whether the child has ended.
func (c *soakChild) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL (unless the child has already ended) and waits for
// the exit. It reports whether the child had ended by itself, with its
// stderr.
func (c *soakChild) kill() (stderr string, byItself bool) {
	if !c.exited() {
		// os.ErrProcessDone when it ends meanwhile: the exit status says how.
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-c.done
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		return "", false
	}
	return fmt.Sprintf("%v: %s", c.cmd.ProcessState, strings.TrimSpace(c.stderr.String())), true
}
