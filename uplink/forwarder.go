package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"
)

// Forwarder defaults, applied by Run to zero fields.
const (
	DefaultMaxBatch   = 100
	DefaultWindow     = 8
	DefaultRetry      = time.Second
	DefaultMaxRetry   = 30 * time.Second
	DefaultAckTimeout = 30 * time.Second
)

// ErrFrame wraps an error from Forwarder.Frame. Run stops on it: the records
// stay in the queue, since nothing that was not published is ever acked.
var ErrFrame = errors.New("uplink: framing failed")

// ErrForwarder reports an invalid Forwarder configuration.
var ErrForwarder = errors.New("uplink: invalid forwarder")

// AckMode selects when a published record is acked in the Queue (deleted).
type AckMode int

const (
	// AckBroker (the default): a batch is done when the broker's PUBACK
	// arrives (Publish returned nil).
	AckBroker AckMode = iota
	// AckPlatform: a batch is done only when the platform says it has
	// stored it, through PlatformAck. Records published and not
	// acknowledged are sent again after AckTimeout or a reconnect.
	AckPlatform
)

// LastSeqer is a Queue that reports its last assigned seq (badgerq.Queue
// does). A paced Forwarder needs it to tell the backlog from live records.
type LastSeqer interface {
	LastSeq() uint64
}

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
type Forwarder struct {
	Queue     Queue
	Publisher Publisher
	Topic     string
	// Frame builds one MQTT payload from stored records (the gateway passes
	// wire.AppendBatch). It is called from Run's goroutine only.
	Frame    func(recs [][]byte) ([]byte, error)
	MaxBatch int // records per message; default 100
	// MaxBytes bounds the stored bytes of one message's records (0: no
	// bound); a single larger record still goes alone.
	MaxBytes int
	// MaxDelay lets a live batch that is not full wait up to this long for
	// more records, so a quiet township sends fewer, fuller messages
	// (0: publish at once). The backlog never waits.
	MaxDelay time.Duration
	Window   int           // batches in flight at once (per lane); default 8
	Retry    time.Duration // pause after a failed publish or peek; default 1s, doubling
	MaxRetry time.Duration // the pause stops doubling here; default 30s
	Logger   *slog.Logger  // nil: discard
	OnAck    func(n int)   // optional: called with the number of records acked

	// Pacer, if set, paces the backlog (see above); the Queue must then
	// implement LastSeqer. Share one Pacer between the streams whose
	// backlogs should together drain at its rate.
	Pacer *Pacer

	// Ack selects the acknowledgement mode; default AckBroker.
	Ack AckMode
	// AckTimeout (AckPlatform): records published and not acknowledged by
	// the platform for this long are sent again; default 30s.
	AckTimeout time.Duration
	// MaxUnacked (AckPlatform): the most records published and awaiting
	// the platform's acknowledgement; no new batch goes out while there
	// are that many. Default 10×Window×MaxBatch.
	MaxUnacked int

	sigOnce    sync.Once
	sigMu      sync.Mutex
	sig        chan struct{} // wakes Run; capacity 1
	ackUpto    uint64        // highest PlatformAck seen
	reconnects uint64        // Reconnected calls
}

func (f *Forwarder) initSignals() {
	f.sigOnce.Do(func() { f.sig = make(chan struct{}, 1) })
}

func (f *Forwarder) signal() {
	select {
	case f.sig <- struct{}{}:
	default:
	}
}

// PlatformAck records that the platform has stored every record of this
// stream up to and including upto (AckPlatform mode): Run acks every seq it
// published that is ≤ upto, including those whose PUBACK comes later. It is
// safe to call from any goroutine, before or during Run, and does not
// block. In AckBroker mode it has no effect.
func (f *Forwarder) PlatformAck(upto uint64) {
	f.initSignals()
	f.sigMu.Lock()
	f.ackUpto = max(f.ackUpto, upto)
	f.sigMu.Unlock()
	f.signal()
}

// Reconnected tells Run that the publisher has (re)connected: a pause after
// a failed publish ends at once, and in AckPlatform mode every record
// published and not yet acknowledged by the platform is sent again. The
// gateway calls it from mqttpub.Options.OnConnect. It is safe to call from
// any goroutine and does not block.
func (f *Forwarder) Reconnected() {
	f.initSignals()
	f.sigMu.Lock()
	f.reconnects++
	f.sigMu.Unlock()
	f.signal()
}

func (f *Forwarder) signals() (upto, reconnects uint64) {
	f.sigMu.Lock()
	defer f.sigMu.Unlock()
	return f.ackUpto, f.reconnects
}

type fwdBatch struct {
	lane  *lane
	first uint64
	seqs  []uint64
}

type pubResult struct {
	b   *fwdBatch
	err error
}

type peekResult struct {
	lane    *lane
	entries []Entry
	err     error
}

// lane is one cursor over the stream: the paced backlog (bounded) or the
// live records after it.
type lane struct {
	name     string
	after    uint64 // highest seq handed to a publish
	bounded  bool   // backlog: only seqs ≤ bound
	bound    uint64
	done     bool // backlog sent up to bound
	inflight int
	peeking  bool
	cancel   context.CancelFunc
}

// Run forwards until ctx ends (it then returns ctx.Err()), the queue or the
// publisher is closed (ErrClosed), Frame fails (ErrFrame) or Ack fails. It
// waits for its publishes in flight before returning. Run must not be
// called concurrently on one Forwarder.
func (f *Forwarder) Run(ctx context.Context) error {
	if f.Queue == nil || f.Publisher == nil || f.Frame == nil || f.Topic == "" {
		return fmt.Errorf("%w: needs Queue, Publisher, Frame and Topic", ErrForwarder)
	}
	if f.Ack != AckBroker && f.Ack != AckPlatform {
		return fmt.Errorf("%w: unknown ack mode %d", ErrForwarder, f.Ack)
	}
	var tail LastSeqer
	if f.Pacer != nil {
		var ok bool
		if tail, ok = f.Queue.(LastSeqer); !ok {
			return fmt.Errorf("%w: a paced forwarder needs a Queue with LastSeq (%T has none)", ErrForwarder, f.Queue)
		}
	}
	f.initSignals()
	maxBatch := cmpDefault(f.MaxBatch, DefaultMaxBatch)
	window := cmpDefault(f.Window, DefaultWindow)
	retryMin := cmpDefault(f.Retry, DefaultRetry)
	retryMax := max(cmpDefault(f.MaxRetry, DefaultMaxRetry), retryMin)
	platform := f.Ack == AckPlatform
	ackTimeout := cmpDefault(f.AckTimeout, DefaultAckTimeout)
	maxUnacked := cmpDefault(f.MaxUnacked, 10*window*maxBatch)
	log := f.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("topic", f.Topic)

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup // publishes and peeks in flight
	defer wg.Wait()       // runs after cancel below
	defer cancel()

	live := &lane{name: "live"}
	lanes := []*lane{live}
	var backlog *lane
	if f.Pacer != nil {
		b := tail.LastSeq()
		backlog = &lane{name: "backlog", bounded: true, bound: b, done: b == 0}
		live.after = b
		lanes = []*lane{backlog, live}
		log.Debug("uplink: backlog paced", "up_to_seq", b, "rate", f.Pacer.Rate())
	}
	peekN := maxBatch
	if f.Pacer != nil {
		peekN = min(maxBatch, f.Pacer.Burst())
	}

	pubs := make(chan pubResult, window*len(lanes)) // never blocks: at most window in flight per lane
	peeks := make(chan peekResult, len(lanes))      // never blocks: at most one peek per lane
	defer func() {
		for _, l := range lanes {
			if l.cancel != nil {
				l.cancel()
			}
		}
	}()

	var (
		rewinding    bool   // stop sending, drain, then rewind
		rewindMin    uint64 // lowest first seq of the failed batches
		rewindPause  bool   // a publish failed: pause before sending again
		retry        = retryMin
		inflightRecs int
		awaiting     = map[uint64]time.Time{} // AckPlatform: published, not acknowledged
		ackedUpto    uint64                   // AckPlatform: highest PlatformAck applied
		_, seenConn  = f.signals()
		failConn     uint64 // reconnects seen when the failure happened
	)
	var tick <-chan time.Time
	if platform {
		t := time.NewTicker(max(ackTimeout/4, 10*time.Millisecond))
		defer t.Stop()
		tick = t.C
	}

	ack := func(seqs []uint64) error {
		if len(seqs) == 0 {
			return nil
		}
		if err := f.Queue.Ack(seqs...); err != nil {
			return fmt.Errorf("uplink: forwarder %s: ack seq %d..%d: %w", f.Topic, seqs[0], seqs[len(seqs)-1], err)
		}
		if f.OnAck != nil {
			f.OnAck(len(seqs))
		}
		return nil
	}
	cancelPeeks := func() {
		for _, l := range lanes {
			if l.peeking && l.cancel != nil {
				l.cancel()
			}
		}
	}
	startRewind := func(from uint64, pause bool) {
		if !rewinding || from < rewindMin {
			rewindMin = from
		}
		rewinding = true
		rewindPause = rewindPause || pause
		cancelPeeks() // a blocked peek would delay the rewind
	}
	idle := func() bool {
		for _, l := range lanes {
			if l.inflight > 0 || l.peeking {
				return false
			}
		}
		return true
	}
	var handleSignals func() error
	// pause waits out the retry pause; a reconnect since the failure ends
	// it at once. It returns ctx.Err() or an Ack error.
	pause := func() error {
		d := retry
		retry = min(2*retry, retryMax)
		t := time.NewTimer(d)
		defer t.Stop()
		for {
			if _, rc := f.signals(); rc != failConn {
				return nil // reconnected since the failure: resend now
			}
			select {
			case <-t.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			case <-f.sig:
				if err := handleSignals(); err != nil {
					return err
				}
			}
		}
	}
	// handleSignals applies platform acks and reacts to reconnects.
	handleSignals = func() error {
		upto, rc := f.signals()
		if platform && upto > ackedUpto {
			ackedUpto = upto
			var done []uint64
			for s := range awaiting {
				if s <= upto {
					done = append(done, s)
				}
			}
			slices.Sort(done)
			for _, s := range done {
				delete(awaiting, s)
			}
			if err := ack(done); err != nil {
				return err
			}
		}
		if rc != seenConn {
			seenConn = rc
			if platform && len(awaiting) > 0 {
				log.Info("uplink: reconnected: resending what the platform has not acknowledged", "records", len(awaiting))
				startRewind(math.MaxUint64, false)
			}
		}
		return nil
	}
	startPeek := func(l *lane) {
		n := maxBatch
		if l.bounded {
			n = peekN
		}
		l.peeking = true
		pctx, pc := context.WithCancel(ctx)
		l.cancel = pc
		wg.Add(1)
		go func(l *lane, after, bound uint64, n int) { // owned by Run: waited for by wg
			defer wg.Done()
			e, err := f.Queue.Peek(pctx, after, n)
			if err == nil && !l.bounded && f.MaxDelay > 0 && len(e) < n {
				t := time.NewTimer(f.MaxDelay)
				select {
				case <-t.C:
					if more, err2 := f.Queue.Peek(pctx, after, n); err2 == nil {
						e = more
					}
				case <-pctx.Done():
				}
				t.Stop()
			}
			if err == nil && l.bounded {
				k := 0
				for k < len(e) && e[k].Seq <= bound {
					k++
				}
				e = e[:k]
				if k > 0 {
					err = f.Pacer.take(pctx, k)
				}
			}
			peeks <- peekResult{l, e, err}
		}(l, l.after, l.bound, n)
	}

	for {
		if err := handleSignals(); err != nil {
			return err
		}
		if rewinding && idle() {
			from := rewindMin
			if backlog != nil && !backlog.done {
				from = min(from, backlog.after+1)
			}
			for s := range awaiting {
				from = min(from, s)
			}
			clear(awaiting)
			rewinding = false
			if from != math.MaxUint64 {
				if rewindPause {
					log.Warn("uplink: rewinding after failed publish", "from_seq", from, "retry_in", retry)
				} else {
					log.Info("uplink: resending unacknowledged records", "from_seq", from)
				}
				if backlog != nil {
					b := max(tail.LastSeq(), from-1)
					backlog.after, backlog.bound, backlog.done = from-1, b, from-1 >= b
					live.after = b
				} else {
					live.after = from - 1
				}
			}
			if rewindPause {
				rewindPause = false
				if err := pause(); err != nil {
					return err
				}
				continue
			}
		}
		if !rewinding && ctx.Err() == nil && (!platform || len(awaiting)+inflightRecs < maxUnacked) {
			for _, l := range lanes {
				if l.bounded && l.after >= l.bound {
					l.done = true
				}
				if !l.peeking && !l.done && l.inflight < window {
					startPeek(l)
				}
			}
		}

		select {
		case <-ctx.Done():
			return ctx.Err()

		case <-f.sig:
			// handled at the top of the loop

		case <-tick:
			if rewinding || len(awaiting) == 0 {
				continue
			}
			oldest, from := time.Time{}, uint64(math.MaxUint64)
			for s, at := range awaiting {
				if oldest.IsZero() || at.Before(oldest) {
					oldest = at
				}
				from = min(from, s)
			}
			if time.Since(oldest) >= ackTimeout {
				log.Warn("uplink: platform did not acknowledge in time; resending", "records", len(awaiting), "from_seq", from, "timeout", ackTimeout)
				startRewind(from, false)
			}

		case r := <-peeks:
			l := r.lane
			l.peeking = false
			l.cancel()
			if rewinding {
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
				_, failConn = f.signals()
				if err := pause(); err != nil {
					return err
				}
				continue
			}
			entries := r.entries
			if len(entries) > maxBatch {
				entries = entries[:maxBatch]
			}
			if f.MaxBytes > 0 {
				size := 0
				for i, e := range entries {
					size += len(e.Data)
					if size > f.MaxBytes && i > 0 {
						entries = entries[:i]
						break
					}
				}
			}
			if len(entries) == 0 {
				if l.bounded {
					l.done = true // only live records left after the boundary
				}
				continue
			}
			recs := make([][]byte, len(entries))
			b := &fwdBatch{lane: l, first: entries[0].Seq, seqs: make([]uint64, len(entries))}
			for i, e := range entries {
				if e.Seq <= l.after {
					return fmt.Errorf("uplink: forwarder %s: queue returned seq %d, not after %d", f.Topic, e.Seq, l.after)
				}
				recs[i], b.seqs[i] = e.Data, e.Seq
			}
			payload, err := f.Frame(recs)
			if err != nil {
				return fmt.Errorf("uplink: forwarder %s: seq %d..%d: %w: %w", f.Topic, b.first, b.seqs[len(b.seqs)-1], ErrFrame, err)
			}
			l.after = b.seqs[len(b.seqs)-1]
			l.inflight++
			inflightRecs += len(b.seqs)
			wg.Add(1)
			go func() { // owned by Run: waited for by wg
				defer wg.Done()
				pubs <- pubResult{b, f.Publisher.Publish(ctx, f.Topic, payload)}
			}()

		case r := <-pubs:
			r.b.lane.inflight--
			inflightRecs -= len(r.b.seqs)
			if r.err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if errors.Is(r.err, ErrClosed) {
					return fmt.Errorf("uplink: forwarder %s: publish: %w", f.Topic, r.err)
				}
				if !rewinding || !rewindPause {
					log.Warn("uplink: publish failed", "seq", r.b.first, "records", len(r.b.seqs), "err", r.err)
					_, failConn = f.signals()
				}
				startRewind(r.b.first, true)
				continue
			}
			retry = retryMin
			if !platform {
				if err := ack(r.b.seqs); err != nil {
					return err
				}
				continue
			}
			upto, _ := f.signals()
			var now []uint64
			at := time.Now()
			for _, s := range r.b.seqs {
				if s <= upto {
					now = append(now, s)
				} else {
					awaiting[s] = at
				}
			}
			if err := ack(now); err != nil {
				return err
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
