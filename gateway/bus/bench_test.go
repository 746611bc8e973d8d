package bus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/firmware-sim/dlt645sim"
	"github.com/townlink/townlink/gateway/bus"
	"github.com/townlink/townlink/hardware"
)

// The line owner against the wire-time limit: 32 DL/T 645-2007 meters on
// one 2400 8E1 line, each read (energy_kwh) as often as the line allows.
// The simulators emulate the wire time of every byte at 2400 8E1 and a
// 20 ms turnaround, so the only way to go faster would be a faster line.
//
// The limit is computed, not measured (see txTime): per transaction
// request 20 bytes incl. 4 FE (91.7 ms) + turnaround 20 ms + reply 24
// bytes incl. 4 FE (110.0 ms) + t3.5 (16.0 ms) = 237.7 ms, 4.21 tx/s.
//
// Sub-benchmarks differ in the silence kept before each request:
//   - t3.5: only the 3.5 characters the link needs (the limit's own figure);
//   - 20ms: protocols.md §1.4 gives a meter 20 ms ≤ Td ≤ 500 ms to turn its
//     transceiver round; giving it the same 20 ms back after its reply is the
//     shortest pause the standard's timing justifies;
//   - 50ms: the "≥ 50 ms after the last byte" of gateway practice (§1.4, not
//     a rule of the standard), what the DL/T 645 driver slept between the
//     requests of one poll before it declared its gap instead. It alone
//     caps the line at 237.7/271.7 = 87.5 % of the limit.
func BenchmarkLineOwner32Meters(b *testing.B) {
	for _, gc := range []struct {
		name string
		gap  time.Duration
	}{{"gap=t3.5", time.Nanosecond}, {"gap=20ms", 20 * time.Millisecond}, {"gap=50ms", 50 * time.Millisecond}} {
		b.Run(gc.name, func(b *testing.B) { benchLine(b, 32, gc.gap) })
	}
}

const (
	benchTurnaround = dlt645sim.DefaultTurnaround // 20 ms
	benchPreamble   = 4
	benchTimeout    = 600 * time.Millisecond // > 221.7 ms on the wire, with room for a loaded machine
)

func benchSim(n int) (*dlt645sim.Line, []*dlt645sim.Meter) {
	meters := make([]*dlt645sim.Meter, n)
	for i := range meters {
		m := dlt645sim.NewMeter(meterAddr(i+1), dlt645sim.V2007)
		m.Set("energy_kwh", fmt.Sprintf("%d.%02d", 1000+i, i))
		m.SetPreamble(benchPreamble)
		meters[i] = m
	}
	sim := dlt645sim.NewLine(line2400, meters...)
	sim.WireTime = true
	sim.Turnaround = benchTurnaround
	return sim, meters
}

func benchLine(b *testing.B, n int, gap time.Duration) {
	sim, _ := benchSim(n)
	st := newStamps()
	cfg := bus.Config{Name: "RS485-B", Mode: line2400, Open: serveMeters(b, sim), Emit: st.emit}
	for i := range n {
		cfg.Devices = append(cfg.Devices, meterDevice(fmt.Sprintf("m%02d", i+1), meterAddr(i+1), 0, benchTimeout, 2, gap))
	}
	l := newLine(b, cfg)
	runLine(b, l)
	// Warm up past the start, then measure from a reading to the k-th
	// reading after it (both at the end of a transaction). b.Loop runs the
	// set-up once, not once more per b.N guess.
	st.waitTotal(b, 2, 60*time.Second)
	c0 := st.total()
	s0 := l.Stats()
	k := 0
	for b.Loop() {
		k++
		st.waitTotal(b, c0+k, 60*time.Second)
	}
	elapsed := st.nth(c0 + k - 1).Sub(st.nth(c0 - 1))
	s1 := l.Stats()

	per, req, rep := txTime(line2400, benchTurnaround, benchPreamble)
	rate := float64(k) / elapsed.Seconds()
	limit := float64(time.Second) / float64(per)
	b.ReportMetric(rate, "tx/s")
	b.ReportMetric(limit, "limit_tx/s")
	b.ReportMetric(100*rate/limit, "%_of_limit")
	b.ReportMetric(float64(s1.Timeouts+s1.FrameErrors-s0.Timeouts-s0.FrameErrors), "failed_polls")
	if k >= n {
		b.Logf("%d meters, %d transactions in %v: %.3f tx/s, limit %.3f tx/s (%v each: %d B request, %d B reply), %.1f %%; line busy %.1f %%, silence kept %v",
			n, k, elapsed.Round(time.Millisecond), rate, limit, per, req, rep, 100*rate/limit,
			100*s1.Utilisation(), (s1.Silence - s0.Silence).Round(time.Millisecond))
	}
}

// The same line with one dead meter added: it must cost at most one
// timeout per back-off window (the owner probes it once per window, the
// driver's two retries notwithstanding), and the live meters keep the rest
// of the line.
//
// Reported: windows (back-off windows that passed after the meter went
// down, each with its one try), dead_timeouts_per_window (requests the dead
// meter was sent per window: 1.0 is the bar; without the probe rule it
// would be 3, one per driver attempt), dead_ms_per_window (line time the
// dead meter took per window: one timeout plus the silence kept before it),
// dead_line_% (its share of the line while backed off) and the live
// meters' rate against the limit. A due probe still takes its turn: here
// the 32 live meters are always due (interval 0), so a probe also waits up
// to one round of them (32 × 0.24 s) after its window ends, and windows
// come further apart than MinBackoff/MaxBackoff alone would make them.
func BenchmarkLineOwnerDeadMeter(b *testing.B) {
	const n = 32
	sim, meters := benchSim(n + 1)
	dead := meters[n]
	dead.SetFault(dlt645sim.Silent)
	st := newStamps()
	cfg := bus.Config{Name: "RS485-B", Mode: line2400, Open: serveMeters(b, sim), Emit: st.emit,
		MinBackoff: time.Second, MaxBackoff: 4 * time.Second}
	const gap = 20 * time.Millisecond
	for i := range n {
		cfg.Devices = append(cfg.Devices, meterDevice(fmt.Sprintf("m%02d", i+1), meterAddr(i+1), 0, benchTimeout, 2, gap))
	}
	deadDev := meterDevice("dead", meterAddr(n+1), 0, benchTimeout, 2, gap)
	tp := &timedPoller{}
	newDead := deadDev.New
	deadDev.New = func(p hardware.Port) (drivers.Poller, error) {
		inner, err := newDead(p)
		tp.inner = inner
		return tp, err
	}
	cfg.Devices = append(cfg.Devices, deadDev)
	l := newLine(b, cfg)
	runLine(b, l)

	waitUntil(b, "the dead meter down", 60*time.Second, func() bool { return l.States()["dead"].State == bus.Down })
	downAt := time.Now()
	f0 := sim.Stats().Faulted // requests the silent meter heard (and did not answer)
	p0 := l.States()["dead"].Polls
	c0 := st.total()
	k := 0
	for b.Loop() {
		k++
		st.waitTotal(b, c0+k, 60*time.Second)
	}
	// At least two windows after the meter went down, so there is
	// something to divide by.
	waitUntil(b, "two back-off windows", 60*time.Second, func() bool { return l.States()["dead"].Polls >= p0+2 })
	end := time.Now()
	windows := l.States()["dead"].Polls - p0
	timeouts := sim.Stats().Faulted - f0
	deadTime := tp.since(downAt)
	elapsed := end.Sub(downAt)
	live := st.total() - c0

	per, _, _ := txTime(line2400, benchTurnaround, benchPreamble)
	limit := float64(time.Second) / float64(per)
	rate := float64(live) / elapsed.Seconds()
	b.ReportMetric(float64(windows), "windows")
	b.ReportMetric(float64(timeouts)/float64(windows), "dead_timeouts_per_window")
	b.ReportMetric(float64(deadTime.Milliseconds())/float64(windows), "dead_ms_per_window")
	b.ReportMetric(100*deadTime.Seconds()/elapsed.Seconds(), "dead_line_%")
	b.ReportMetric(rate, "live_tx/s")
	b.ReportMetric(100*rate/limit, "live_%_of_limit")
	b.Logf("after the dead meter went down: %v, %d windows, %d requests to it (%.2f per window), %v of line time (%.1f %%), live %.3f tx/s = %.1f %% of %.3f; dead meter %+v",
		elapsed.Round(time.Millisecond), windows, timeouts, float64(timeouts)/float64(windows), deadTime.Round(time.Millisecond),
		100*deadTime.Seconds()/elapsed.Seconds(), rate, 100*rate/limit, limit, l.States()["dead"])
}

// timedPoller records how long each of its polls held the line.
type timedPoller struct {
	inner drivers.Poller
	mu    sync.Mutex
	polls []span
}

type span struct{ start, end time.Time }

func (t *timedPoller) Poll(ctx context.Context, dst []drivers.Reading) ([]drivers.Reading, error) {
	s := time.Now()
	rs, err := t.inner.Poll(ctx, dst)
	t.mu.Lock()
	t.polls = append(t.polls, span{s, time.Now()})
	t.mu.Unlock()
	return rs, err
}

// FrameGap passes on the gap the wrapped meter declares, so the line keeps
// it as for the meter itself.
func (t *timedPoller) FrameGap() time.Duration {
	if g, ok := t.inner.(drivers.FrameGapper); ok {
		return g.FrameGap()
	}
	return 0
}

// since sums the time of the polls that started at or after from.
func (t *timedPoller) since(from time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var d time.Duration
	for _, p := range t.polls {
		if !p.start.Before(from) {
			d += p.end.Sub(p.start)
		}
	}
	return d
}
