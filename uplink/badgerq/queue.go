package badgerq

import (
	"context"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/townlink/townlink/uplink"
)

var errClosed = uplink.ErrClosed

// StreamOptions configures one stream.
type StreamOptions struct {
	// Seal turns a caller's payload into the stored bytes once the entry's
	// seq is known. It runs on the committer goroutine in seq order; state is
	// the stream's seal state (e.g. an evidence chain head), persisted in the
	// same transaction as the entry. It returns the stored bytes and the new
	// state. Seal must be a pure function of its arguments and must not keep
	// or modify them: it can run again for the same seq when a batch is split
	// or a commit fails, and only the committed result counts. A Seal error
	// fails that Append alone. Nil stores payloads as they are.
	Seal func(seq uint64, payload, state []byte) (stored, newState []byte, err error)
}

// Queue is one stream's durable FIFO. It implements uplink.Queue.
type Queue struct {
	db      *DB
	name    string
	prefix  []byte
	metaKey []byte

	// Set by Stream before first use, read by the committer.
	opened bool
	seal   func(seq uint64, payload, state []byte) (stored, newState []byte, err error)
	state  []byte // committed seal state; committer only after recovery

	mu      sync.Mutex
	last    uint64              // last committed seq
	head    uint64              // lowest unacked seq; last+1 when empty
	acked   map[uint64]struct{} // acked seqs in (head, last]
	backlog int64
	bytes   int64
	wake    chan struct{} // closed and replaced when last advances
}

var _ uplink.Queue = (*Queue)(nil)

// Stats is a snapshot of a stream.
type Stats struct {
	Backlog  int64  // entries appended and not acked
	FirstSeq uint64 // oldest unacked seq; 0 when Backlog is 0
	LastSeq  uint64 // last assigned seq (0 before the first Append)
	Bytes    int64  // approximate stored bytes of the backlog
}

func newQueue(db *DB, name string, last uint64, state []byte) *Queue {
	return &Queue{
		db:      db,
		name:    name,
		prefix:  entryPrefix(name),
		metaKey: metaKey(name),
		state:   state,
		last:    last,
		head:    last + 1,
		acked:   make(map[uint64]struct{}),
		wake:    make(chan struct{}),
	}
}

// scan recovers head, backlog, bytes and holes from the entry keys.
func (q *Queue) scan(txn *badger.Txn) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: q.prefix})
	defer it.Close()
	var first, prev uint64
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		seq, err := parseEntryKey(q.prefix, item.Key())
		if err != nil {
			return fmt.Errorf("stream %s: %w", q.name, err)
		}
		if seq > q.last {
			// Entries and meta are written in one transaction; keep the data anyway.
			q.db.log.Warn("entry beyond the stream's last seq; adopting it", "stream", q.name, "seq", seq, "last", q.last)
			q.last = seq
		}
		if first == 0 {
			first = seq
		} else {
			for s := prev + 1; s < seq; s++ {
				q.acked[s] = struct{}{}
			}
		}
		prev = seq
		q.backlog++
		q.bytes += item.ValueSize()
	}
	q.head = q.last + 1
	if first != 0 {
		q.head = first
	}
	return nil
}

// Name is the stream name.
func (q *Queue) Name() string { return q.name }

// Append stores the payloads with consecutive seqs in one transaction and
// returns nil once it is committed and synced. Payloads are copied. If ctx
// ends first, Append returns ctx.Err() and the entries may or may not
// have been committed (the committer skips requests whose ctx has ended).
func (q *Queue) Append(ctx context.Context, data ...[]byte) error {
	if len(data) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	total := 0
	for _, d := range data {
		total += len(d)
	}
	buf := make([]byte, 0, total)
	copies := make([][]byte, len(data))
	for i, d := range data {
		buf = append(buf, d...)
		copies[i] = buf[len(buf)-len(d) : len(buf) : len(buf)]
	}
	r := &appendReq{ctx: ctx, q: q, data: copies, done: make(chan error, 1)}
	if err := q.db.enqueueAppend(r); err != nil {
		return fmt.Errorf("badgerq: append to %s: %w", q.name, err)
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// committed publishes a committed transaction's effect on this stream.
func (q *Queue) committed(t *tentative) {
	q.state = t.state
	q.mu.Lock()
	q.last = t.last
	q.backlog += t.n
	q.bytes += t.bytes
	close(q.wake)
	q.wake = make(chan struct{})
	q.mu.Unlock()
}

// Peek returns up to n entries with seq > after, oldest first, skipping
// acked ones. It blocks until at least one exists or ctx ends.
func (q *Queue) Peek(ctx context.Context, after uint64, n int) ([]uplink.Entry, error) {
	if n <= 0 {
		return nil, fmt.Errorf("%w: Peek n=%d, want > 0", ErrArgument, n)
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		q.mu.Lock()
		start, last, wake := max(after+1, q.head), q.last, q.wake
		q.mu.Unlock()
		if start <= last {
			out, err := q.read(start, last, n)
			if err != nil || len(out) > 0 {
				return out, err
			}
			// Everything in range was acked: wait for more.
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-q.db.closing:
			return nil, fmt.Errorf("badgerq: peek %s: %w", q.name, errClosed)
		}
	}
}

func (q *Queue) read(start, last uint64, n int) ([]uplink.Entry, error) {
	txn := q.db.bdb.NewTransaction(false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{
		PrefetchValues: true,
		PrefetchSize:   min(n, 100),
		Prefix:         q.prefix,
	})
	defer it.Close()
	out := make([]uplink.Entry, 0, min(uint64(n), last-start+1, 1024))
	for it.Seek(entryKey(nil, q.prefix, start)); it.Valid() && len(out) < n; it.Next() {
		item := it.Item()
		seq, err := parseEntryKey(q.prefix, item.Key())
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", q.name, err)
		}
		if seq > last {
			break
		}
		if q.isAcked(seq) {
			continue
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return nil, fmt.Errorf("badgerq: read %s seq %d: %w", q.name, seq, err)
		}
		out = append(out, uplink.Entry{Seq: seq, Data: v})
	}
	return out, nil
}

func (q *Queue) isAcked(seq uint64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if seq < q.head {
		return true
	}
	_, ok := q.acked[seq]
	return ok
}

// Ack deletes delivered entries, in any order; unknown or already acked
// seqs are ignored. The acked entries disappear from Peek at once; their
// deletes ride in the committer's next transaction, so Ack does not wait
// for a sync (after a crash a recent ack can be lost, giving a duplicate;
// Close flushes them).
func (q *Queue) Ack(seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	// db.mu before q.mu (nothing takes them the other way round), so the
	// deletes reach the committer before Close can stop it.
	q.db.mu.Lock()
	defer q.db.mu.Unlock()
	if q.db.stopping {
		return fmt.Errorf("badgerq: ack %s: %w", q.name, errClosed)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	queued := len(q.db.dels)
	for _, s := range seqs {
		if s < q.head || s > q.last {
			continue
		}
		if _, ok := q.acked[s]; ok {
			continue
		}
		q.acked[s] = struct{}{}
		q.db.dels = append(q.db.dels, delReq{q, s})
		if q.backlog > 0 {
			q.bytes -= q.bytes / q.backlog // approximate: the average entry
			q.backlog--
		}
	}
	for q.head <= q.last {
		if _, ok := q.acked[q.head]; !ok {
			break
		}
		delete(q.acked, q.head)
		q.head++
	}
	if q.backlog == 0 {
		q.bytes = 0
	}
	if len(q.db.dels) > queued {
		q.db.cond.Signal()
	}
	return nil
}

// Stats returns a snapshot of the stream's counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := Stats{Backlog: q.backlog, LastSeq: q.last, Bytes: q.bytes}
	if q.backlog > 0 {
		s.FirstSeq = q.head
	}
	return s
}
