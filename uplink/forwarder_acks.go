package uplink

import (
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// ackPolicy decides when a published record may be acked in the Queue:
// at its PUBACK (brokerAcks) or once the platform has stored it
// (platformAcks).
type ackPolicy interface {
	// puback: a publish of seqs returned nil at `at`; upto is the highest
	// platform ack accepted so far. It returns the seqs to ack now.
	puback(seqs []uint64, upto uint64, at time.Time) []uint64
	// platformAck returns the seqs that the platform's ack up to upto
	// completes.
	platformAck(upto uint64) []uint64
	// full reports that no new batch may go out while inflight records are
	// being published.
	full(inflight int) bool
	// pending is how many published records wait for an acknowledgement.
	pending() int
	// overdue reports the lowest waiting seq and how many wait, if the
	// oldest has waited too long.
	overdue(now time.Time) (from uint64, n int, ok bool)
	// resendFrom is the lowest waiting seq (MaxUint64: none); the waiting
	// records are forgotten, as a rewind sends them again.
	resendFrom() uint64
	// forget drops the waiting records (Run ends; they stay in the queue).
	forget()
}

// brokerAcks: a PUBACK is the acknowledgement.
type brokerAcks struct{}

func (brokerAcks) puback(seqs []uint64, _ uint64, _ time.Time) []uint64 { return seqs }
func (brokerAcks) platformAck(uint64) []uint64                          { return nil }
func (brokerAcks) full(int) bool                                        { return false }
func (brokerAcks) pending() int                                         { return 0 }
func (brokerAcks) overdue(time.Time) (uint64, int, bool)                { return 0, 0, false }
func (brokerAcks) resendFrom() uint64                                   { return math.MaxUint64 }
func (brokerAcks) forget()                                              {}

// platformAcks: a record is done when the platform's {stream, upto} covers
// it; published records wait, and are sent again after a timeout.
type platformAcks struct {
	timeout    time.Duration
	maxUnacked int
	awaiting   map[uint64]time.Time // published (PUBACKed), not acknowledged
	applied    uint64               // highest platform ack applied
	gauge      *atomic.Int64        // Stats().Unacked
}

func newPlatformAcks(timeout time.Duration, maxUnacked int, gauge *atomic.Int64) *platformAcks {
	return &platformAcks{timeout: timeout, maxUnacked: maxUnacked, awaiting: map[uint64]time.Time{}, gauge: gauge}
}

func (p *platformAcks) set() { p.gauge.Store(int64(len(p.awaiting))) }

func (p *platformAcks) puback(seqs []uint64, upto uint64, at time.Time) []uint64 {
	var now []uint64
	for _, s := range seqs {
		if s <= upto {
			now = append(now, s)
		} else {
			p.awaiting[s] = at
		}
	}
	p.set()
	return now
}

func (p *platformAcks) platformAck(upto uint64) []uint64 {
	if upto <= p.applied {
		return nil
	}
	p.applied = upto
	var done []uint64
	for s := range p.awaiting {
		if s <= upto {
			done = append(done, s)
		}
	}
	slices.Sort(done)
	for _, s := range done {
		delete(p.awaiting, s)
	}
	p.set()
	return done
}

func (p *platformAcks) full(inflight int) bool { return len(p.awaiting)+inflight >= p.maxUnacked }
func (p *platformAcks) pending() int           { return len(p.awaiting) }

func (p *platformAcks) overdue(now time.Time) (from uint64, n int, ok bool) {
	if len(p.awaiting) == 0 {
		return 0, 0, false
	}
	oldest, from := time.Time{}, uint64(math.MaxUint64)
	for s, at := range p.awaiting {
		if oldest.IsZero() || at.Before(oldest) {
			oldest = at
		}
		from = min(from, s)
	}
	return from, len(p.awaiting), now.Sub(oldest) >= p.timeout
}

func (p *platformAcks) resendFrom() uint64 {
	from := uint64(math.MaxUint64)
	for s := range p.awaiting {
		from = min(from, s)
	}
	p.forget()
	return from
}

func (p *platformAcks) forget() {
	clear(p.awaiting)
	p.set()
}
