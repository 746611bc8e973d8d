package uplink

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// lane is one cursor over the stream: the paced backlog (bounded) or the
// live records after it. Each lane has its own window of publishes.
type lane struct {
	name     string
	after    uint64 // highest seq handed to a publish
	bounded  bool   // backlog: only seqs ≤ bound
	bound    uint64
	done     bool // backlog sent up to bound
	inflight int  // batches in flight
	peeking  bool
	cancel   context.CancelFunc // ends the lane's peek
}

// fill starts a peek on every lane with room in its window, unless a
// rewind is pending or the ack policy holds back new batches.
func (r *run) fill() {
	if r.rw.active || r.ctx.Err() != nil || r.acks.full(r.inflightRecs) {
		return
	}
	for _, l := range r.lanes {
		if l.bounded && l.after >= l.bound {
			l.done = true
		}
		if !l.peeking && !l.done && l.inflight < r.cfg.Window {
			r.startPeek(l)
		}
	}
}

// startPeek reads the lane's next records in a goroutine owned by Run
// (waited for by r.wg). The live lane reads enough for every free slot of
// its window; the backlog one batch of at most the Pacer's burst.
func (r *run) startPeek(l *lane) {
	n := r.cfg.MaxBatch * (r.cfg.Window - l.inflight)
	if l.bounded {
		n = r.peekN
	}
	l.peeking = true
	ctx, cancel := context.WithCancel(r.ctx)
	l.cancel = cancel
	bounded, after, bound := l.bounded, l.after, l.bound
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		e, err := r.fetch(ctx, bounded, after, bound, n)
		r.peeks <- peekResult{l, e, err}
	}()
}

// fetch peeks up to n records after `after`. Backlog records are cut at
// the bound and take their Pacer tokens; a live batch that is not full
// waits up to MaxDelay for more.
func (r *run) fetch(ctx context.Context, bounded bool, after, bound uint64, n int) ([]Entry, error) {
	e, err := r.cfg.Queue.Peek(ctx, after, n)
	if err != nil {
		return nil, err
	}
	if bounded {
		k := 0
		for k < len(e) && e[k].Seq <= bound {
			k++
		}
		e = e[:k]
		if k > 0 {
			if err := r.cfg.Pacer.take(ctx, k); err != nil {
				return nil, err
			}
		}
		return e, nil
	}
	if r.cfg.MaxDelay <= 0 || !r.partial(e) {
		return e, nil
	}
	t := time.NewTimer(r.cfg.MaxDelay)
	defer t.Stop()
	select {
	case <-t.C:
		if more, err := r.cfg.Queue.Peek(ctx, after, n); err == nil {
			e = more
		}
	case <-ctx.Done():
	}
	return e, nil
}

// partial reports that entries do not fill one message.
func (r *run) partial(entries []Entry) bool {
	return len(cutBatch(entries, r.cfg.MaxBatch, r.cfg.MaxBytes)) == len(entries) && len(entries) < r.cfg.MaxBatch
}

// cutBatch returns the first message's records: at most maxBatch and, if
// maxBytes > 0, at most maxBytes of stored bytes — except that the first
// record always goes, alone if it is larger than maxBytes.
func cutBatch(entries []Entry, maxBatch, maxBytes int) []Entry {
	n := min(len(entries), maxBatch)
	if maxBytes > 0 {
		size := 0
		for i := range n {
			size += len(entries[i].Data)
			if size > maxBytes && i > 0 {
				return entries[:i]
			}
		}
	}
	return entries[:n]
}

// onPeek sends what a lane's peek returned, in as many batches as its
// window has room for; the rest is peeked again later.
func (r *run) onPeek(p peekResult) error {
	l := p.lane
	l.peeking = false
	l.cancel()
	if r.rw.active {
		return nil // stale: sending restarts from the rewind point
	}
	if p.err != nil {
		return r.peekFailed(p.err)
	}
	if len(p.entries) == 0 {
		if l.bounded {
			l.done = true // only live records left after the boundary
		}
		return nil
	}
	entries := p.entries
	for first := true; len(entries) > 0 && l.inflight < r.cfg.Window && !r.acks.full(r.inflightRecs); first = false {
		b := cutBatch(entries, r.cfg.MaxBatch, r.cfg.MaxBytes)
		if !first && !l.bounded && r.cfg.MaxDelay > 0 && r.partial(entries) {
			break // a short live tail waits for its own peek (and MaxDelay)
		}
		entries = entries[len(b):]
		if err := r.publish(l, b); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) peekFailed(err error) error {
	if r.ctx.Err() != nil {
		return r.ctx.Err()
	}
	if errors.Is(err, ErrClosed) {
		return fmt.Errorf("uplink: forwarder %s: peek: %w", r.cfg.Topic, err)
	}
	r.f.stats.retries.Add(1)
	r.log.Error("uplink: peek failed", "err", err, "retry_in", r.back.cur)
	_, r.failConn = r.f.signals()
	return r.pause()
}

// publish frames one batch and publishes it in a goroutine owned by Run
// (waited for by r.wg).
func (r *run) publish(l *lane, entries []Entry) error {
	recs := make([][]byte, len(entries))
	b := &fwdBatch{lane: l, first: entries[0].Seq, seqs: make([]uint64, len(entries))}
	prev := l.after
	for i, e := range entries {
		if e.Seq <= prev {
			return fmt.Errorf("uplink: forwarder %s: queue returned seq %d, not after %d", r.cfg.Topic, e.Seq, prev)
		}
		prev = e.Seq
		recs[i], b.seqs[i] = e.Data, e.Seq
	}
	payload, err := r.cfg.Frame(recs)
	if err != nil {
		return fmt.Errorf("uplink: forwarder %s: seq %d..%d: %w: %w", r.cfg.Topic, b.first, prev, ErrFrame, err)
	}
	l.after = prev
	l.inflight++
	n := len(b.seqs)
	r.inflightRecs += n
	st := &r.f.stats
	if prev > st.lastSent.Load() { // only Run's goroutine stores it
		st.lastSent.Store(prev)
	}
	st.inflight.Add(int64(n))
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		err := r.cfg.Publisher.Publish(r.ctx, r.cfg.Topic, payload)
		st.inflight.Add(-int64(n))
		if err == nil {
			st.published.Add(uint64(n))
		}
		r.pubs <- pubResult{b, err}
	}()
	return nil
}
