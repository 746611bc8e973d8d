package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Forwarder defaults, applied by Run to zero fields.
const (
	DefaultMaxBatch = 100
	DefaultWindow   = 8
	DefaultRetry    = time.Second
	DefaultMaxRetry = 30 * time.Second
)

// ErrFrame wraps an error from Forwarder.Frame. Run stops on it: the records
// stay in the queue, since nothing that was not published is ever acked.
var ErrFrame = errors.New("uplink: framing failed")

// Forwarder moves records of one stream from a Queue to a Publisher:
// Peek → Frame → Publish → Ack, with up to Window batches in flight at once
// (a sliding window: a new batch is published as soon as any outstanding one
// is acknowledged, never publish-then-wait-for-all).
//
// Delivery is at least once. A batch is acked only after its Publish
// returned nil (the broker's PUBACK); batches may complete and be acked out
// of order. When a publish fails, the Forwarder stops sending, lets the
// batches in flight finish (acking those that succeed), rewinds to the
// oldest failed batch and, after a pause, sends again from there: acked
// records are gone from the queue, so only what was not acknowledged is sent
// again.
type Forwarder struct {
	Queue     Queue
	Publisher Publisher
	Topic     string
	// Frame builds one MQTT payload from stored records (the gateway passes
	// wire.AppendBatch). It is called from Run's goroutine only.
	Frame    func(recs [][]byte) ([]byte, error)
	MaxBatch int           // records per message; default 100
	Window   int           // batches in flight at once; default 8
	Retry    time.Duration // pause after a failed publish or peek; default 1s, doubling
	MaxRetry time.Duration // the pause stops doubling here; default 30s
	Logger   *slog.Logger  // nil: discard
	OnAck    func(n int)   // optional: called with the number of records acked
}

type fwdBatch struct {
	first uint64
	seqs  []uint64
}

type pubResult struct {
	b   *fwdBatch
	err error
}

type peekResult struct {
	entries []Entry
	err     error
}

// Run forwards until ctx ends (it then returns ctx.Err()), the queue or the
// publisher is closed (ErrClosed), Frame fails (ErrFrame) or Ack fails. It waits for its
// publishes in flight before returning. Run must not be called concurrently
// on one Forwarder.
func (f *Forwarder) Run(ctx context.Context) error {
	if f.Queue == nil || f.Publisher == nil || f.Frame == nil || f.Topic == "" {
		return errors.New("uplink: forwarder needs Queue, Publisher, Frame and Topic")
	}
	maxBatch := cmpDefault(f.MaxBatch, DefaultMaxBatch)
	window := cmpDefault(f.Window, DefaultWindow)
	retryMin := cmpDefault(f.Retry, DefaultRetry)
	retryMax := max(cmpDefault(f.MaxRetry, DefaultMaxRetry), retryMin)
	log := f.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("topic", f.Topic)

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup // publishes and the peek in flight
	defer wg.Wait()       // runs after cancel below
	defer cancel()

	pubs := make(chan pubResult, window) // never blocks: at most window in flight
	peeks := make(chan peekResult, 1)    // never blocks: at most one peek in flight

	var (
		after      uint64 // highest seq handed out to a publish
		inflight   int
		peeking    bool
		peekCancel context.CancelFunc = func() {}
		failing    bool               // a publish failed: drain, then rewind
		failedMin  uint64             // lowest first seq of the failed batches
		retry      = retryMin
	)
	defer func() { peekCancel() }()

	pause := func() bool {
		d := retry
		retry = min(2*retry, retryMax)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}

	for {
		if failing && inflight == 0 && !peeking {
			log.Warn("uplink: rewinding after failed publish", "from_seq", failedMin, "retry_in", retry)
			after = failedMin - 1
			failing, failedMin = false, 0
			if !pause() {
				return ctx.Err()
			}
		}
		if !failing && !peeking && inflight < window && ctx.Err() == nil {
			peeking = true
			pctx, pc := context.WithCancel(ctx)
			peekCancel = pc
			wg.Add(1)
			go func(after uint64) { // owned by Run: waited for by wg
				defer wg.Done()
				e, err := f.Queue.Peek(pctx, after, maxBatch)
				peeks <- peekResult{e, err}
			}(after)
		}

		select {
		case <-ctx.Done():
			return ctx.Err()

		case r := <-peeks:
			peeking = false
			peekCancel()
			if failing {
				continue // stale: sending restarts from the rewind point
			}
			if r.err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if errors.Is(r.err, ErrClosed) {
					return fmt.Errorf("uplink: forwarder %s: peek: %w", f.Topic, r.err)
				}
				log.Error("uplink: peek failed", "err", r.err, "retry_in", retry)
				if !pause() {
					return ctx.Err()
				}
				continue
			}
			entries := r.entries
			if len(entries) > maxBatch {
				entries = entries[:maxBatch]
			}
			if len(entries) == 0 {
				continue
			}
			recs := make([][]byte, len(entries))
			b := &fwdBatch{first: entries[0].Seq, seqs: make([]uint64, len(entries))}
			for i, e := range entries {
				if e.Seq <= after {
					return fmt.Errorf("uplink: forwarder %s: queue returned seq %d, not after %d", f.Topic, e.Seq, after)
				}
				recs[i], b.seqs[i] = e.Data, e.Seq
			}
			payload, err := f.Frame(recs)
			if err != nil {
				return fmt.Errorf("uplink: forwarder %s: seq %d..%d: %w: %w", f.Topic, b.first, b.seqs[len(b.seqs)-1], ErrFrame, err)
			}
			after = b.seqs[len(b.seqs)-1]
			inflight++
			wg.Add(1)
			go func() { // owned by Run: waited for by wg
				defer wg.Done()
				pubs <- pubResult{b, f.Publisher.Publish(ctx, f.Topic, payload)}
			}()

		case r := <-pubs:
			inflight--
			if r.err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if errors.Is(r.err, ErrClosed) {
					return fmt.Errorf("uplink: forwarder %s: publish: %w", f.Topic, r.err)
				}
				if !failing {
					log.Warn("uplink: publish failed", "seq", r.b.first, "records", len(r.b.seqs), "err", r.err)
				}
				if !failing || r.b.first < failedMin {
					failedMin = r.b.first
				}
				failing = true
				peekCancel() // a blocked peek would delay the rewind
				continue
			}
			if err := f.Queue.Ack(r.b.seqs...); err != nil {
				return fmt.Errorf("uplink: forwarder %s: ack seq %d..%d: %w", f.Topic, r.b.first, r.b.seqs[len(r.b.seqs)-1], err)
			}
			retry = retryMin
			if f.OnAck != nil {
				f.OnAck(len(r.b.seqs))
			}
		}
	}
}

func cmpDefault[T int | time.Duration](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}
