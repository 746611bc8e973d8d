package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"
)

// run is the state of one Forwarder.Run: the lanes and their windows, the
// rewind in progress, the back-off and the ack policy. Only Run's goroutine
// touches it; the peek and publish goroutines report on peeks and pubs.
type run struct {
	f      *Forwarder
	cfg    *ForwarderConfig
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // peeks and publishes in flight

	live    *lane
	backlog *lane   // nil unless paced
	lanes   []*lane // backlog (if any) first, then live
	peekN   int     // records per backlog peek: ≤ MaxBatch and ≤ the Pacer's burst

	pubs  chan pubResult  // never blocks: at most Window in flight per lane
	peeks chan peekResult // never blocks: at most one peek per lane

	acks         ackPolicy
	tick         <-chan time.Time // AckPlatform: look for overdue acks
	ticker       *time.Ticker
	rw           rewind
	back         backoff
	inflightRecs int
	seenConn     uint64 // reconnects already reacted to
	failConn     uint64 // reconnects seen when the last failure happened
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

func (f *Forwarder) newRun(parent context.Context) *run {
	ctx, cancel := context.WithCancel(parent)
	r := &run{f: f, cfg: &f.cfg, log: f.log, ctx: ctx, cancel: cancel,
		back: newBackoff(f.cfg.Retry, f.cfg.MaxRetry), peekN: f.cfg.MaxBatch}
	r.live = &lane{name: "live"}
	r.lanes = []*lane{r.live}
	if f.tail != nil {
		b := f.tail.LastSeq()
		r.backlog = &lane{name: "backlog", bounded: true, bound: b, done: b == 0}
		r.live.after = b
		r.lanes = []*lane{r.backlog, r.live}
		r.peekN = min(f.cfg.MaxBatch, f.cfg.Pacer.Burst())
		r.log.Debug("uplink: backlog paced", "up_to_seq", b, "rate", f.cfg.Pacer.Rate())
	}
	r.pubs = make(chan pubResult, f.cfg.Window*len(r.lanes))
	r.peeks = make(chan peekResult, len(r.lanes))
	_, r.seenConn = f.signals()
	r.acks = brokerAcks{}
	if f.cfg.Ack == AckPlatform {
		r.acks = newPlatformAcks(f.cfg.AckTimeout, f.cfg.MaxUnacked, &f.stats.unacked)
		r.ticker = time.NewTicker(max(f.cfg.AckTimeout/4, 10*time.Millisecond))
		r.tick = r.ticker.C
	}
	return r
}

// stop cancels the peeks and publishes in flight and waits for them.
func (r *run) stop() {
	for _, l := range r.lanes {
		if l.cancel != nil {
			l.cancel()
		}
	}
	r.cancel()
	r.wg.Wait()
	if r.ticker != nil {
		r.ticker.Stop()
	}
	r.acks.forget() // the queue still holds them; the next Run resends
}

// step waits for one event and handles it.
func (r *run) step() error {
	select {
	case <-r.ctx.Done():
		return r.ctx.Err()
	case <-r.f.sig:
		return nil // handled by applySignals at the top of Run's loop
	case <-r.tick:
		r.resendOverdue()
		return nil
	case p := <-r.peeks:
		return r.onPeek(p)
	case p := <-r.pubs:
		return r.onPublished(p)
	}
}

// applySignals applies platform acks and reacts to reconnects.
func (r *run) applySignals() error {
	upto, rc := r.f.signals()
	if err := r.ack(r.acks.platformAck(upto)); err != nil {
		return err
	}
	if rc != r.seenConn {
		r.seenConn = rc
		if n := r.acks.pending(); n > 0 {
			r.log.Info("uplink: reconnected: resending what the platform has not acknowledged", "records", n)
			r.startRewind(math.MaxUint64, false)
		}
	}
	return nil
}

// ack deletes delivered records from the queue.
func (r *run) ack(seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	if err := r.cfg.Queue.Ack(seqs...); err != nil {
		return fmt.Errorf("uplink: forwarder %s: ack seq %d..%d: %w", r.cfg.Topic, seqs[0], seqs[len(seqs)-1], err)
	}
	r.f.stats.acked.Add(uint64(len(seqs)))
	if r.cfg.OnAck != nil {
		r.cfg.OnAck(len(seqs))
	}
	return nil
}

// resendOverdue rewinds to what the platform did not acknowledge in time.
func (r *run) resendOverdue() {
	if r.rw.active {
		return
	}
	if from, n, ok := r.acks.overdue(time.Now()); ok {
		r.log.Warn("uplink: platform did not acknowledge in time; resending", "records", n, "from_seq", from, "timeout", r.cfg.AckTimeout)
		r.startRewind(from, false)
	}
}

// onPublished handles a publish that returned.
func (r *run) onPublished(p pubResult) error {
	p.b.lane.inflight--
	r.inflightRecs -= len(p.b.seqs)
	if p.err != nil {
		return r.publishFailed(p.b, p.err)
	}
	r.back.reset()
	upto, _ := r.f.signals()
	return r.ack(r.acks.puback(p.b.seqs, upto, time.Now()))
}

func (r *run) publishFailed(b *fwdBatch, err error) error {
	if r.ctx.Err() != nil {
		return r.ctx.Err()
	}
	if errors.Is(err, ErrClosed) {
		return fmt.Errorf("uplink: forwarder %s: publish: %w", r.cfg.Topic, err)
	}
	r.f.stats.retries.Add(1)
	if !r.rw.active || !r.rw.pause {
		r.log.Warn("uplink: publish failed", "seq", b.first, "records", len(b.seqs), "err", err)
		_, r.failConn = r.f.signals()
	}
	r.startRewind(b.first, true)
	return nil
}

// ---- rewind and back-off ----

// rewind is a pending rewind: stop sending, let what is in flight finish,
// then send again from the oldest record not acknowledged.
type rewind struct {
	active bool
	from   uint64 // lowest first seq of the failed batches
	pause  bool   // a publish failed: pause before sending again
}

func (w *rewind) start(from uint64, pause bool) {
	if !w.active || from < w.from {
		w.from = from
	}
	w.active = true
	w.pause = w.pause || pause
}

func (r *run) startRewind(from uint64, pause bool) {
	r.rw.start(from, pause)
	for _, l := range r.lanes { // a blocked peek would delay the rewind
		if l.peeking && l.cancel != nil {
			l.cancel()
		}
	}
}

// idle reports that no peek or publish is in flight.
func (r *run) idle() bool {
	for _, l := range r.lanes {
		if l.inflight > 0 || l.peeking {
			return false
		}
	}
	return true
}

// rewind moves the lanes back to the oldest record not acknowledged and,
// after a failure, pauses. Run calls it once idle.
func (r *run) rewind() error {
	from := min(r.rw.from, r.acks.resendFrom())
	if r.backlog != nil && !r.backlog.done {
		from = min(from, r.backlog.after+1)
	}
	pause := r.rw.pause
	r.rw = rewind{}
	if from != math.MaxUint64 {
		if pause {
			r.log.Warn("uplink: rewinding after failed publish", "from_seq", from, "retry_in", r.back.cur)
		} else {
			r.log.Info("uplink: resending unacknowledged records", "from_seq", from)
		}
		r.moveCursors(from)
	}
	if pause {
		return r.pause()
	}
	return nil
}

// moveCursors makes from the next seq to send. With a Pacer the boundary
// between backlog and live moves to the queue's current end.
func (r *run) moveCursors(from uint64) {
	if r.backlog == nil {
		r.live.after = from - 1
		return
	}
	b := max(r.f.tail.LastSeq(), from-1)
	r.backlog.after, r.backlog.bound, r.backlog.done = from-1, b, from-1 >= b
	r.live.after = b
}

// pause waits out the back-off; a reconnect since the failure ends it at
// once. It returns ctx.Err() or an Ack error.
func (r *run) pause() error {
	t := time.NewTimer(r.back.next())
	defer t.Stop()
	for {
		if _, rc := r.f.signals(); rc != r.failConn {
			return nil // reconnected since the failure: resend now
		}
		select {
		case <-t.C:
			return nil
		case <-r.ctx.Done():
			return r.ctx.Err()
		case <-r.f.sig:
			if err := r.applySignals(); err != nil {
				return err
			}
		}
	}
}

// backoff is the pause after a failure: min, doubling up to max, back to
// min after a success.
type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(lo, hi time.Duration) backoff { return backoff{min: lo, max: max(lo, hi), cur: lo} }

func (b *backoff) next() time.Duration {
	d := b.cur
	b.cur = min(2*b.cur, b.max)
	return d
}

func (b *backoff) reset() { b.cur = b.min }
