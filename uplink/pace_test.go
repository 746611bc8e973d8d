package uplink_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/townlink/townlink/uplink"
)

// stampPublisher PUBACKs at once and records when each seq was published.
type stampPublisher struct {
	t      testing.TB
	ledger *ledger
	mu     sync.Mutex
	at     map[uint64]time.Time // first publish of each seq
	count  map[uint64]int
	calls  atomic.Int64
	hook   func(seqs []uint64) error // optional: decides the result
}

func newStampPublisher(t testing.TB, l *ledger) *stampPublisher {
	return &stampPublisher{t: t, ledger: l, at: map[uint64]time.Time{}, count: map[uint64]int{}}
}

func (p *stampPublisher) Publish(ctx context.Context, topic string, payload []byte) error {
	p.calls.Add(1)
	seqs := seqsOf(p.t, payload)
	now := time.Now()
	if p.hook != nil {
		if err := p.hook(seqs); err != nil {
			return err
		}
	}
	p.mu.Lock()
	for _, s := range seqs {
		if _, ok := p.at[s]; !ok {
			p.at[s] = now
		}
		p.count[s]++
	}
	p.mu.Unlock()
	p.ledger.record(p.t, payload)
	return nil
}

func (p *stampPublisher) published(seq uint64) (time.Time, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.at[seq], p.count[seq]
}

// countBelow counts distinct published seqs ≤ bound.
func (p *stampPublisher) countBelow(bound uint64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for s := range p.at {
		if s <= bound {
			n++
		}
	}
	return n
}

// With a 100k backlog and live records arriving at 100/s, live records go
// out within a second of their Append while the backlog drains at the
// Pacer's rate (±10 %), and never faster than its token bucket allows.
func TestForwarderLiveFirstPacedBacklog(t *testing.T) {
	const (
		backlog = 100_000
		rate    = 4000.0
		burst   = 100
		liveN   = 250 // 2.5 s of live records at 100/s
	)
	l := newLedger()
	q := newMemQueue(t, l)
	q.add(backlog)
	p := newStampPublisher(t, l)
	pacer, err := uplink.NewPacer(rate, burst)
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := runForwarder(t, newFwd(t, uplink.ForwarderConfig{Queue: q, Publisher: p, Topic: "t/telemetry", Frame: frame,
		MaxBatch: 100, Window: 8, Pacer: pacer}))
	start := time.Now()

	appended := make(map[uint64]time.Time, liveN)
	tick := time.NewTicker(10 * time.Millisecond)
	var mid1, mid2 time.Time
	var c1, c2 int
	for i := range liveN {
		<-tick.C
		seq := uint64(backlog + i + 1)
		appended[seq] = time.Now()
		q.add(1)
		switch i {
		case 50: // after the initial burst: measure from here…
			mid1, c1 = time.Now(), p.countBelow(backlog)
		case liveN - 1: // …to here
			mid2, c2 = time.Now(), p.countBelow(backlog)
		}
	}
	tick.Stop()
	waitFor(t, "the last live record", func() bool { at, _ := p.published(backlog + liveN); return !at.IsZero() })
	stop()
	elapsed := time.Since(start)
	granted := pacer.Granted()

	var worst time.Duration
	for seq, at := range appended {
		pub, _ := p.published(seq)
		if pub.IsZero() {
			t.Fatalf("live seq %d never published", seq)
		}
		worst = max(worst, pub.Sub(at))
	}
	if worst > time.Second {
		t.Errorf("a live record waited %v between Append and publish, want < 1s", worst)
	}
	// The pacer must never exceed its rate; how close to it a loaded
	// machine gets is measured (logged), not asserted.
	measured := float64(c2-c1) / mid2.Sub(mid1).Seconds()
	if measured > 1.1*rate {
		t.Errorf("backlog drained at %.0f records/s, more than the rate %.0f +10%%", measured, rate)
	}
	drained := p.countBelow(backlog)
	// Counter-based: the backlog never took more than the bucket holds.
	if uint64(drained) > granted || float64(granted) > rate*elapsed.Seconds()+burst {
		t.Errorf("%d backlog records published, %d tokens granted in %v (bucket allows %.0f)", drained, granted, elapsed, rate*elapsed.Seconds()+burst)
	}
	if drained >= backlog {
		t.Errorf("the whole backlog went out: pacing did nothing")
	}
	q.checkViolations(t)
	t.Logf("backlog %.0f records/s (rate %.0f), %d drained in %v; %d live records, worst Append→publish %v", measured, rate, drained, elapsed.Round(time.Millisecond), liveN, worst)
}

// Paced, with random publish failures: every record is still acked exactly
// once, and none before its publish succeeded (the two cursors rewind
// together).
func TestForwarderPacedRandomFailures(t *testing.T) {
	const backlog, liveN = 2000, 1000
	l := newLedger()
	q := newMemQueue(t, l)
	q.add(backlog)
	p := &randPublisher{t: t, ledger: l, rnd: seededRand(t), fail: 0.2}
	pacer, err := uplink.NewPacer(50_000, 100)
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := runForwarder(t, newFwd(t, uplink.ForwarderConfig{Queue: q, Publisher: p, Topic: "t/telemetry", Frame: frame,
		MaxBatch: 50, Window: 4, Retry: 100 * time.Microsecond, MaxRetry: time.Millisecond, Pacer: pacer}))
	for added := 0; added < liveN; added += 50 {
		q.add(50)
		time.Sleep(time.Millisecond)
	}
	waitFor(t, "all records acked", func() bool { return q.ackedCount() == backlog+liveN })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
	q.check(t, backlog+liveN)
	if p.fails.Load() == 0 {
		t.Error("no publish failed: the test did not exercise the rewind")
	}
}

// NewPacer refuses a rate that is not positive; the default burst is a
// tenth of a second's records, at least one.
func TestNewPacer(t *testing.T) {
	for _, r := range []float64{0, -1, math.Inf(1), math.NaN()} {
		if _, err := uplink.NewPacer(r, 1); !errors.Is(err, uplink.ErrPacer) {
			t.Errorf("NewPacer(%v) = %v, want ErrPacer", r, err)
		}
	}
	for _, c := range []struct {
		rate float64
		want int
	}{{10, 1}, {4000, 400}, {0.5, 1}} {
		p, err := uplink.NewPacer(c.rate, 0)
		if err != nil {
			t.Fatal(err)
		}
		if p.Burst() != c.want {
			t.Errorf("default burst at %v/s = %d, want %d", c.rate, p.Burst(), c.want)
		}
	}
}

// After a failed publish the Forwarder pauses (here: an hour); Reconnected
// ends the pause at once.
func TestForwarderReconnectedEndsPause(t *testing.T) {
	l := newLedger()
	q := newMemQueue(t, l)
	q.add(5)
	p := newStampPublisher(t, l)
	var failed atomic.Bool
	logs := &logSignal{msgs: make(chan string, 100)}
	p.hook = func([]uint64) error {
		if failed.CompareAndSwap(false, true) {
			return errors.New("connection lost")
		}
		return nil
	}
	f := newFwd(t, uplink.ForwarderConfig{Queue: q, Publisher: p, Topic: "t/alarms", Frame: frame, Retry: time.Hour, Logger: slog.New(logs)})
	stop, _ := runForwarder(t, f)
	logs.waitFor(t, "uplink: rewinding after failed publish")
	if q.ackedCount() != 0 {
		t.Fatal("acked a failed publish")
	}
	f.Reconnected()
	waitFor(t, "resend after Reconnected", func() bool { return q.isAcked(1, 2, 3, 4, 5) })
	stop()
	q.check(t, 5)
}
