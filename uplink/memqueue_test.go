package uplink_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/queuetest"
)

// memQueue is an in-memory Queue for unit-testing the Forwarder; it passes
// the queuetest conformance suite (TestMemQueueConformance), so what the
// Forwarder tests learn from it holds for a real queue. On top it checks
// the Forwarder's promises: its Ack records a violation for a seq that is
// not stored (never appended, or acked twice) or that no successful Publish
// carried (when it has a ledger).
type memQueue struct {
	s      *memState // shared by the handles of one "directory"
	closed atomic.Bool
}

type memState struct {
	ledger *ledger // nil: no publish check (conformance)

	mu         sync.Mutex
	next       uint64 // next seq to assign
	data       map[uint64][]byte
	notify     chan struct{} // closed and replaced on Append
	acked      map[uint64]int
	violations []string
}

var (
	_ uplink.Queue     = (*memQueue)(nil)
	_ uplink.LastSeqer = (*memQueue)(nil)
)

func newMemQueue(_ testing.TB, l *ledger) *memQueue {
	return &memQueue{s: &memState{ledger: l, next: 1, data: map[uint64][]byte{}, notify: make(chan struct{}), acked: map[uint64]int{}}}
}

// close makes every later call fail with uplink.ErrClosed, as a closed
// queue does; the data stays for a reopen (a new handle on q.s).
func (q *memQueue) close() { q.closed.Store(true) }

func (q *memQueue) Append(ctx context.Context, data ...[]byte) error {
	if q.closed.Load() {
		return fmt.Errorf("memqueue: append: %w", uplink.ErrClosed)
	}
	if len(data) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s := q.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range data {
		s.data[s.next] = append([]byte(nil), d...)
		s.next++
	}
	close(s.notify)
	s.notify = make(chan struct{})
	return nil
}

// add appends n records that carry their seqs.
func (q *memQueue) add(n int) {
	q.s.mu.Lock()
	first := q.s.next
	q.s.mu.Unlock()
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = record(first + uint64(i))
	}
	q.Append(context.Background(), recs...) // single writer in these tests
}

func (q *memQueue) Peek(ctx context.Context, after uint64, n int) ([]uplink.Entry, error) {
	if n <= 0 {
		return nil, fmt.Errorf("memqueue: Peek n=%d, want > 0", n)
	}
	s := q.s
	for {
		if q.closed.Load() {
			return nil, fmt.Errorf("memqueue: peek: %w", uplink.ErrClosed)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s.mu.Lock()
		var out []uplink.Entry
		for seq := after + 1; seq < s.next && len(out) < n; seq++ {
			if d, ok := s.data[seq]; ok {
				out = append(out, uplink.Entry{Seq: seq, Data: d})
			}
		}
		ch := s.notify
		s.mu.Unlock()
		if len(out) > 0 {
			return out, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (q *memQueue) Ack(seqs ...uint64) error {
	if q.closed.Load() {
		return fmt.Errorf("memqueue: ack: %w", uplink.ErrClosed)
	}
	s := q.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, seq := range seqs {
		if _, ok := s.data[seq]; !ok {
			s.violations = append(s.violations, fmt.Sprintf("ack of seq %d, which is not stored (acked %d times before)", seq, s.acked[seq]))
		}
		if s.ledger != nil && !s.ledger.published(seq) {
			s.violations = append(s.violations, fmt.Sprintf("ack of seq %d, which no successful Publish carried", seq))
		}
		delete(s.data, seq)
		s.acked[seq]++
	}
	return nil
}

// LastSeq makes memQueue a uplink.LastSeqer, as a paced Forwarder needs.
func (q *memQueue) LastSeq() uint64 {
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	return q.s.next - 1
}

func (q *memQueue) isAcked(seqs ...uint64) bool {
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	for _, seq := range seqs {
		if q.s.acked[seq] == 0 {
			return false
		}
	}
	return true
}

func (q *memQueue) ackedCount() int {
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	return len(q.s.acked)
}

func (q *memQueue) checkViolations(t testing.TB) {
	t.Helper()
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	for _, v := range q.s.violations {
		t.Error(v)
	}
}

// check asserts that seqs 1..n were all acked exactly once, and no violation.
func (q *memQueue) check(t testing.TB, n int) {
	t.Helper()
	q.checkViolations(t)
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	for seq := uint64(1); seq <= uint64(n); seq++ {
		if q.s.acked[seq] != 1 {
			t.Errorf("seq %d acked %d times, want 1", seq, q.s.acked[seq])
		}
	}
	if len(q.s.data) != 0 {
		t.Errorf("%d records left in the queue", len(q.s.data))
	}
}

// TestMemQueueConformance runs the Queue conformance suite on the fake the
// Forwarder tests use. A directory is a memState; reopening it gives a new
// handle on the same state, and a closed handle fails with ErrClosed.
func TestMemQueueConformance(t *testing.T) {
	var mu sync.Mutex
	states := map[string]*memState{}
	queuetest.Run(t, func(t *testing.T, dir string) (uplink.Queue, func()) {
		mu.Lock()
		defer mu.Unlock()
		q := newMemQueue(t, nil)
		if s, ok := states[dir]; ok {
			q.s = s
		}
		states[dir] = q.s
		return q, q.close
	})
}

// A closed memQueue fails every call with ErrClosed, as the Forwarder's
// closed-queue test relies on.
func TestMemQueueClosed(t *testing.T) {
	q := newMemQueue(t, nil)
	q.add(1)
	q.close()
	if err := q.Append(context.Background(), []byte("x")); !isClosed(err) {
		t.Errorf("Append after close = %v, want ErrClosed", err)
	}
	if _, err := q.Peek(context.Background(), 0, 1); !isClosed(err) {
		t.Errorf("Peek after close = %v, want ErrClosed", err)
	}
	if err := q.Ack(1); !isClosed(err) {
		t.Errorf("Ack after close = %v, want ErrClosed", err)
	}
}
