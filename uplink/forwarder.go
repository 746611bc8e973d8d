package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrFrame wraps an error from ForwarderConfig.Frame. Run stops on it: the
// records stay in the queue, since nothing that was not published is ever
// acked.
var ErrFrame = errors.New("uplink: framing failed")

// ignoredAckLogEvery rate-limits the log of ignored platform acks.
const ignoredAckLogEvery = time.Minute

// Forwarder moves records of one stream from a Queue to a Publisher:
// Peek → Frame → Publish → Ack, with up to Window batches in flight at once
// (a sliding window: a new batch is published as soon as any outstanding one
// is acknowledged, never publish-then-wait-for-all).
//
// Delivery is at least once. A batch is acked only after its Publish
// returned nil (the broker's PUBACK) or, with AckPlatform, after the
// platform acknowledged it; batches may complete and be acked out of order.
// When a publish fails, the Forwarder stops sending, lets the batches in
// flight finish (acking those that succeed), rewinds to the oldest failed
// batch and, after a pause (cut short by Reconnected), sends again from
// there: acked records are gone from the queue, so only what was not
// acknowledged is sent again.
//
// # Live first, paced backlog
//
// With a Pacer, the stream is split at a boundary: the queue's last seq
// when Run starts and again at every rewind (that is, after a reconnect).
// Records up to the boundary are the backlog: they go out in seq order,
// taking one token of the shared Pacer per record. Records after it are
// live: they go out at once, never paced, each lane with its own window.
// Live records therefore overtake the backlog (the contract allows it: the
// platform orders by seq). Streams that must never wait (alarms, evidence)
// get no Pacer.
//
// # Platform acks
//
// A platform ack above the highest seq this Forwarder has handed to
// Publish cannot be genuine: it is ignored, logged (rate-limited) and
// counted in Stats, so a forged {upto: 2^64-1} cannot ack what was never
// sent.
type Forwarder struct {
	cfg  ForwarderConfig // validated, defaults applied; never changed
	tail LastSeqer       // the Queue, when paced
	log  *slog.Logger
	sig  chan struct{} // wakes Run; capacity 1

	running atomic.Bool

	mu         sync.Mutex
	ackUpto    uint64 // highest accepted PlatformAck
	reconnects uint64 // Reconnected calls
	ignoredLog time.Time
	ignoredN   uint64 // ignored since the last log line

	stats fwdCounters
}

// NewForwarder validates cfg (an error wrapping ErrForwarder names the
// first bad field) and returns a Forwarder for it. cfg is copied; zero
// fields get their defaults.
func NewForwarder(cfg ForwarderConfig) (*Forwarder, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	f := &Forwarder{cfg: c, log: c.Logger.With("topic", c.Topic), sig: make(chan struct{}, 1)}
	if c.Pacer != nil {
		f.tail = c.Queue.(LastSeqer) // checked by check
	}
	return f, nil
}

// Config returns the Forwarder's configuration with its defaults applied.
func (f *Forwarder) Config() ForwarderConfig { return f.cfg }

// ForwarderStats is a snapshot of a Forwarder's counters since
// NewForwarder.
type ForwarderStats struct {
	Published     uint64 // records carried by publishes that returned nil (resends count again)
	Acked         uint64 // records acked (deleted) in the Queue
	Retries       uint64 // failed publishes and peeks, each followed by a retry
	IgnoredAcks   uint64 // platform acks above LastPublished, ignored
	InFlight      int64  // records handed to Publish that has not returned yet
	Unacked       int64  // AckPlatform: records published, awaiting the platform
	LastPublished uint64 // highest seq ever handed to Publish
	PlatformAcked uint64 // highest platform ack accepted
}

type fwdCounters struct {
	published, acked, retries, ignored atomic.Uint64
	inflight, unacked                  atomic.Int64
	lastSent                           atomic.Uint64
}

// Stats returns a snapshot of the counters. It is safe to call from any
// goroutine.
func (f *Forwarder) Stats() ForwarderStats {
	f.mu.Lock()
	upto := f.ackUpto
	f.mu.Unlock()
	s := &f.stats
	return ForwarderStats{
		Published: s.published.Load(), Acked: s.acked.Load(), Retries: s.retries.Load(),
		IgnoredAcks: s.ignored.Load(), InFlight: s.inflight.Load(), Unacked: s.unacked.Load(),
		LastPublished: s.lastSent.Load(), PlatformAcked: upto,
	}
}

func (f *Forwarder) signal() {
	select {
	case f.sig <- struct{}{}:
	default:
	}
}

// PlatformAck records that the platform has stored every record of this
// stream up to and including upto (AckPlatform mode): Run acks every seq it
// published that is ≤ upto, including those whose PUBACK comes later. An
// upto above the highest seq ever handed to Publish is ignored, logged
// (rate-limited) and counted (Stats().IgnoredAcks). It is safe to call from
// any goroutine, before or during Run, and does not block. In AckBroker
// mode it has no effect.
func (f *Forwarder) PlatformAck(upto uint64) {
	last := f.stats.lastSent.Load()
	f.mu.Lock()
	if upto > last {
		f.stats.ignored.Add(1)
		f.ignoredN++
		now := time.Now()
		if f.ignoredLog.IsZero() || now.Sub(f.ignoredLog) >= ignoredAckLogEvery {
			n := f.ignoredN
			f.ignoredLog, f.ignoredN = now, 0
			f.mu.Unlock()
			f.log.Warn("uplink: platform ack above the highest published seq ignored",
				"upto", upto, "last_published", last, "ignored", n)
			return
		}
		f.mu.Unlock()
		return
	}
	f.ackUpto = max(f.ackUpto, upto)
	f.mu.Unlock()
	f.signal()
}

// Reconnected tells Run that the publisher has (re)connected: a pause after
// a failed publish ends at once, and in AckPlatform mode every record
// published and not yet acknowledged by the platform is sent again. The
// gateway calls it from mqttpub.Options.OnConnect. It is safe to call from
// any goroutine and does not block.
func (f *Forwarder) Reconnected() {
	f.mu.Lock()
	f.reconnects++
	f.mu.Unlock()
	f.signal()
}

func (f *Forwarder) signals() (upto, reconnects uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ackUpto, f.reconnects
}

// Run forwards until ctx ends (it then returns ctx.Err()), the queue or the
// publisher is closed (ErrClosed), Frame fails (ErrFrame) or Ack fails. It
// waits for its publishes in flight before returning. Run may be called
// again after it returned, never twice at once (ErrForwarder).
func (f *Forwarder) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: Run called while running (topic %s)", ErrForwarder, f.cfg.Topic)
	}
	defer f.running.Store(false)
	r := f.newRun(ctx)
	defer r.stop()
	for {
		if err := r.applySignals(); err != nil {
			return err
		}
		if r.rw.active && r.idle() {
			if err := r.rewind(); err != nil {
				return err
			}
			continue
		}
		r.fill()
		if err := r.step(); err != nil {
			return err
		}
	}
}
