package uplink_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/townlink/townlink/uplink"
)

// In AckPlatform mode a PUBACK acks nothing; PlatformAck(upto) acks every
// published seq ≤ upto, including those whose PUBACK comes later.
func TestForwarderPlatformAck(t *testing.T) {
	l := newLedger()
	q := newMemQueue(t, l)
	q.add(10)
	p := newCtlPublisher(t, l)
	var acks atomic.Int64
	f := newFwd(t, uplink.ForwarderConfig{Queue: q, Publisher: p, Topic: "t/events", Frame: frame, MaxBatch: 4, Window: 4,
		Ack: uplink.AckPlatform, AckTimeout: time.Hour, OnAck: func(n int) { acks.Add(int64(n)) }})
	stop, _ := runForwarder(t, f)
	cs := p.nextCalls(t, 3) // [1..4] [5..8] [9 10]
	// The platform has 1..6 before the broker's PUBACK for [5..8] arrives.
	cs[0].res <- nil
	f.PlatformAck(6)
	waitFor(t, "platform ack of 1..4", func() bool { return q.isAcked(1, 2, 3, 4) })
	cs[1].res <- nil
	waitFor(t, "5, 6 acked at their PUBACK", func() bool { return q.isAcked(5, 6) })
	cs[2].res <- nil
	f.PlatformAck(8)
	waitFor(t, "7, 8", func() bool { return q.isAcked(7, 8) })
	if q.isAcked(9) || q.isAcked(10) {
		t.Fatal("PUBACK acked 9, 10 in AckPlatform mode")
	}
	f.PlatformAck(10)
	waitFor(t, "9, 10", func() bool { return q.isAcked(9, 10) })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
	q.check(t, 10)
	if acks.Load() != 10 {
		t.Errorf("OnAck counted %d", acks.Load())
	}
}

// Published records the platform does not acknowledge within AckTimeout
// are sent again; a later PlatformAck acks them once.
func TestForwarderPlatformAckTimeoutResends(t *testing.T) {
	l := newLedger()
	q := newMemQueue(t, l)
	q.add(5)
	p := newStampPublisher(t, l)
	logs := &logSignal{msgs: make(chan string, 100)}
	f := newFwd(t, uplink.ForwarderConfig{Queue: q, Publisher: p, Topic: "t/events", Frame: frame,
		Ack: uplink.AckPlatform, AckTimeout: 20 * time.Millisecond, Logger: slog.New(logs)})
	stop, _ := runForwarder(t, f)
	waitFor(t, "a resend", func() bool { _, n := p.published(1); return n >= 2 })
	if q.ackedCount() != 0 {
		t.Fatal("acked without a platform ack")
	}
	f.PlatformAck(5)
	waitFor(t, "acks", func() bool { return q.isAcked(1, 2, 3, 4, 5) })
	stop()
	q.check(t, 5)
}

// Reconnected resends what the platform has not acknowledged, at once.
func TestForwarderPlatformAckReconnectResends(t *testing.T) {
	l := newLedger()
	q := newMemQueue(t, l)
	q.add(5)
	p := newStampPublisher(t, l)
	f := newFwd(t, uplink.ForwarderConfig{Queue: q, Publisher: p, Topic: "t/events", Frame: frame, Ack: uplink.AckPlatform, AckTimeout: time.Hour})
	stop, _ := runForwarder(t, f)
	waitFor(t, "first publish", func() bool { _, n := p.published(5); return n == 1 })
	f.Reconnected()
	waitFor(t, "resend after reconnect", func() bool { _, n := p.published(5); return n == 2 })
	f.PlatformAck(5)
	waitFor(t, "acks", func() bool { return q.isAcked(1, 2, 3, 4, 5) })
	stop()
	q.check(t, 5)
	if _, n := p.published(1); n != 2 {
		t.Errorf("seq 1 published %d times, want 2", n)
	}
}

// MaxUnacked bounds what is published and not yet acknowledged.
func TestForwarderPlatformAckWindow(t *testing.T) {
	const maxUnacked = 10
	l := newLedger()
	q := newMemQueue(t, l)
	q.add(100)
	p := newStampPublisher(t, l)
	var acked atomic.Uint64
	var over atomic.Value
	p.hook = func(seqs []uint64) error {
		if top := seqs[len(seqs)-1]; top > acked.Load()+maxUnacked {
			over.Store(fmt.Sprintf("published seq %d with only %d acknowledged", top, acked.Load()))
		}
		return nil
	}
	f := newFwd(t, uplink.ForwarderConfig{Queue: q, Publisher: p, Topic: "t/events", Frame: frame, MaxBatch: 5, Window: 8,
		Ack: uplink.AckPlatform, AckTimeout: time.Hour, MaxUnacked: maxUnacked})
	stop, _ := runForwarder(t, f)
	for upto := uint64(maxUnacked); upto <= 100; upto += maxUnacked {
		waitFor(t, fmt.Sprintf("seq %d published", upto), func() bool { at, _ := p.published(upto); return !at.IsZero() })
		acked.Store(upto)
		f.PlatformAck(upto)
	}
	waitFor(t, "all acked", func() bool { return q.ackedCount() == 100 })
	stop()
	q.check(t, 100)
	if v := over.Load(); v != nil {
		t.Error(v)
	}
}

// A platform ack above the highest seq the Forwarder has published cannot
// be genuine: a forged {upto: 2^64-1} is ignored, logged once a minute and
// counted, and ack: platform keeps waiting for genuine acks.
func TestForwarderIgnoresPlatformAckAboveLastPublished(t *testing.T) {
	l := newLedger()
	q := newMemQueue(t, l)
	logs := &countingLog{}
	f := newFwd(t, uplink.ForwarderConfig{Queue: q, Publisher: newStampPublisher(t, l), Topic: "t/evidence", Frame: frame,
		MaxBatch: 4, Ack: uplink.AckPlatform, AckTimeout: time.Hour, Logger: slog.New(logs)})
	f.PlatformAck(1) // before anything was published
	if s := f.Stats(); s.IgnoredAcks != 1 || s.PlatformAcked != 0 {
		t.Fatalf("ack before any publish: stats %+v, want 1 ignored, none accepted", s)
	}
	q.add(10)
	stop, _ := runForwarder(t, f)
	waitFor(t, "10 records published", func() bool { return f.Stats().Published == 10 })
	if s := f.Stats(); s.LastPublished != 10 || s.Unacked != 10 || s.Acked != 0 {
		t.Fatalf("after publishing 1..10: stats %+v, want LastPublished 10, Unacked 10, Acked 0", s)
	}
	f.PlatformAck(math.MaxUint64)
	f.PlatformAck(11)
	if s := f.Stats(); s.IgnoredAcks != 3 || s.PlatformAcked != 0 {
		t.Fatalf("after two forged acks: stats %+v, want 3 ignored, none accepted", s)
	}
	// A genuine ack is applied after the forged ones; had those raised the
	// ack level, 5..10 would be acked with it.
	f.PlatformAck(4)
	waitFor(t, "1..4 acked", func() bool { return q.isAcked(1, 2, 3, 4) })
	if q.isAcked(5) || q.isAcked(10) {
		t.Fatal("a forged platform ack acked records the platform never confirmed")
	}
	if n := logs.count("uplink: platform ack above the highest published seq ignored"); n != 1 {
		t.Errorf("ignored acks logged %d times within a minute, want once (rate-limited)", n)
	}
	f.PlatformAck(10)
	waitFor(t, "5..10 acked", func() bool { return q.isAcked(5, 6, 7, 8, 9, 10) })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
	q.check(t, 10)
	s := f.Stats()
	if s.Acked != 10 || s.PlatformAcked != 10 || s.Unacked != 0 || s.InFlight != 0 || s.IgnoredAcks != 3 {
		t.Errorf("final stats %+v, want Acked 10, PlatformAcked 10, Unacked 0, InFlight 0, IgnoredAcks 3", s)
	}
}

// countingLog counts log messages.
type countingLog struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (h *countingLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingLog) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.msgs == nil {
		h.msgs = map[string]int{}
	}
	h.msgs[r.Message]++
	return nil
}
func (h *countingLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingLog) WithGroup(string) slog.Handler      { return h }

func (h *countingLog) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.msgs[msg]
}
