package badgerq

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

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

	// Quota caps this stream's stored bytes (0: no cap; else at least
	// MinQuota). An Append that would exceed it discards this stream's
	// oldest records first if the stream is in Options.DropOrder and has a
	// Gap function, else it fails with ErrQuota.
	Quota int64

	// Gap builds the payload of a gap record reporting that records
	// from..to (inclusive) of this stream were discarded, reason "quota" or
	// "disk_full" (the gateway passes wire.GapRecord + wire.EncodeRecord).
	// The queue stores it like any payload (Seal gives it its seq) in the
	// same transaction as the deletes. It runs on the committer goroutine
	// and must be fast and pure; its error fails the Append that needed
	// room. Without Gap the stream is never dropped: a discard must always
	// be reported.
	Gap func(from, to uint64, reason string) ([]byte, error)
}

// Queue is one stream's durable FIFO. It implements uplink.Queue.
type Queue struct {
	db        *DB
	name      string
	prefix    []byte
	metaKey   []byte
	ackPrefix []byte

	// Set by Stream before first use, read by the committer.
	opened bool
	seal   func(seq uint64, payload, state []byte) (stored, newState []byte, err error)
	gap    func(from, to uint64, reason string) ([]byte, error)
	quota  int64
	state  []byte // committed seal state; committer only after recovery

	// readMu orders Peek's reads against the committer rewriting or
	// deleting a gap record that no Peek has handed out yet: Peek holds it
	// shared while it reads and marks what it returns, the committer holds
	// it exclusively from that check until the commit is applied.
	readMu sync.RWMutex

	mu      sync.Mutex
	last    uint64 // last committed seq
	sealed  []byte // the seal state committed with last (read-only)
	head    uint64 // lowest unacked seq; last+1 when empty
	slots   slots  // sizes and flags of head..last
	backlog int64
	bytes   int64 // stored bytes of the backlog
	// unsynced: bytes of acked records whose deletes (or ack marks) are
	// not taken by a transaction yet. Quotas count them as stored, so no
	// Append takes their room before the acks are durable: a crash cannot
	// bring them back next to the records that took it.
	unsynced int64
	peeked   uint64        // highest seq Peek has returned
	open     *openGap      // the newest gap record, while it may still grow
	openWhy  string        // its reason
	dropped  int64         // records discarded since Open
	wake     chan struct{} // closed and replaced when last advances
	marks    []mark        // when the backlog was appended, coarsely (see Stats.Oldest)
}

// mark says entries from seq on were appended at or after at (unix ns),
// until the next mark. Marks are at least markGap apart; past maxMarks
// every other one is forgotten, so memory stays bounded and Oldest only
// grows coarser.
type mark struct{ seq, at uint64 }

const (
	markGap  = uint64(time.Second)
	maxMarks = 1024
)

// markLocked records that entries from seq on were appended at now.
func (q *Queue) markLocked(seq uint64, now time.Time) {
	at := uint64(now.UnixNano())
	if n := len(q.marks); n > 0 && at-q.marks[n-1].at < markGap {
		return
	}
	if len(q.marks) >= maxMarks {
		kept := q.marks[:0:0]
		for i := 0; i < len(q.marks); i += 2 {
			kept = append(kept, q.marks[i])
		}
		q.marks = kept
	}
	q.marks = append(q.marks, mark{seq, at})
}

// openGap is a gap record that may absorb the next contiguous drop by being
// rewritten in place, as long as no Peek has handed it out.
type openGap struct {
	seq, from, to uint64
}

var _ uplink.Queue = (*Queue)(nil)

// Stats is a snapshot of a stream.
type Stats struct {
	Backlog  int64  // entries appended and not acked (gap records included)
	FirstSeq uint64 // oldest unacked seq; 0 when Backlog is 0
	LastSeq  uint64 // last assigned seq (0 before the first Append)
	Bytes    int64  // stored bytes of the backlog (exact while open; within a few bytes per value-log entry after a reopen)
	Dropped  int64  // records discarded by quota or disk pressure since Open (gap records not counted)
	// Oldest is when the oldest unacked entry was appended, at most a
	// second early (coarser after more than ~17 minutes of appends wait);
	// entries recovered at Open count from Open, so after a restart it is
	// a lower bound of their age. Zero when Backlog is 0. The status
	// message's "oldest unsent age" is measured from it.
	Oldest time.Time
	// Seal is the seal state committed with LastSeq (for the evidence
	// stream: the chain head, the hash of record LastSeq); nil without a
	// Seal function. Kept across restarts like the seq.
	Seal []byte
}

func newQueue(db *DB, name string, last uint64, state []byte) *Queue {
	return &Queue{
		db:        db,
		name:      name,
		prefix:    entryPrefix(name),
		ackPrefix: ackPrefix(name),
		metaKey:   metaKey(name),
		state:     state,
		sealed:    state,
		last:      last,
		head:      last + 1,
		slots:     slots{base: last + 1},
		wake:      make(chan struct{}),
	}
}

// scan recovers head, backlog, bytes, entry sizes, segments and holes
// from the entry keys (keys only: sizes and the gap flag come from the key
// index; a segment's size is shared evenly by its records).
func (q *Queue) scan(txn *badger.Txn) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: q.prefix})
	defer it.Close()
	type seg struct {
		first uint64
		count int
		v     uint32 // each record's slot
		extra uint32 // the first record's share of the bytes count does not divide
	}
	var segs []seg
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		first, count, err := parseSegKey(q.prefix, item.Key())
		if err != nil {
			return fmt.Errorf("stream %s: %w", q.name, err)
		}
		if end := first + uint64(count-1); end > q.last {
			// Entries and meta are written in one transaction; keep the data anyway.
			q.db.log.Warn("entry beyond the stream's last seq; adopting it", "stream", q.name, "seq", end, "last", q.last)
			q.last = end
		}
		size := max(item.ValueSize(), 0)
		if count > 1 {
			size = max(size-int64(segHdrLen(count)), 0)
		}
		v := uint32(min(size/int64(count), slotSize))
		extra := uint32(min(size-int64(count)*int64(v), slotSize-int64(v)))
		if item.UserMeta()&metaGap != 0 {
			v |= slotGap
		}
		segs = append(segs, seg{first, count, v, extra})
		q.backlog += int64(count)
		q.bytes += int64(count)*sizeOf(v) + int64(extra)
	}
	q.head = q.last + 1
	if len(segs) > 0 {
		q.head = segs[0].first
	}
	q.slots = slots{base: q.head, v: make([]uint32, 0, q.last+1-q.head)}
	next := q.head
	for _, sg := range segs {
		for ; next < sg.first; next++ {
			q.slots.push(slotRemoved | slotStart) // a hole left by deleted segments
		}
		q.slots.push((sg.v + sg.extra) | slotStart)
		for i := 1; i < sg.count; i++ {
			q.slots.push(sg.v)
		}
		next += uint64(sg.count)
	}
	for ; next <= q.last; next++ {
		q.slots.push(slotRemoved | slotStart)
	}
	if err := q.scanAcks(txn); err != nil {
		return err
	}
	q.advanceLocked()
	if q.backlog > 0 {
		q.markLocked(q.head, time.Now())
	}
	return nil
}

// scanAcks removes the records the ack marks say were acked.
func (q *Queue) scanAcks(txn *badger.Txn) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: q.ackPrefix})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		last, err := parseAckKey(q.ackPrefix, item.Key())
		if err != nil {
			return fmt.Errorf("stream %s: %w", q.name, err)
		}
		first, end, ok := q.slots.segOf(last)
		if !ok || end != last {
			continue // a mark whose segment is gone: nothing to remove
		}
		err = item.Value(func(v []byte) error {
			for i := uint64(0); i <= last-first && i/8 < uint64(len(v)); i++ {
				if v[i/8]&(1<<(i%8)) != 0 {
					q.removeLocked(last - i)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("badgerq: read ack mark of %s seq %d: %w", q.name, last, err)
		}
	}
	return nil
}

// ackMark returns the ack mark of the segment ending at last, nil when
// it is gone (or wholly acked: its delete follows).
func (q *Queue) ackMark(last uint64) []byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	first, end, ok := q.slots.segOf(last)
	if !ok || end != last || q.slots.allRemoved(first, last) {
		return nil
	}
	return encodeAcks(first, last, q.removedLocked)
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
	r := q.db.newReq(ctx, q, len(data))
	buf := r.buf[:0]
	if cap(buf) < total {
		buf = make([]byte, 0, total)
	}
	for i, d := range data {
		buf = append(buf, d...)
		r.data[i] = buf[len(buf)-len(d) : len(buf) : len(buf)]
	}
	r.buf = buf
	if err := q.db.enqueueAppend(r); err != nil {
		q.db.freeReq(r)
		return fmt.Errorf("badgerq: append to %s: %w", q.name, err)
	}
	select {
	case err := <-r.done:
		q.db.freeReq(r) // the committer answers once and lets go of r
		return err
	case <-ctx.Done():
		return ctx.Err() // the committer may still answer: r is not reused
	}
}

// LastSeq is the last assigned seq (0 before the first Append). A paced
// uplink.Forwarder uses it to tell backlog from live records.
func (q *Queue) LastSeq() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.last
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
		q.readMu.RLock()
		q.mu.Lock()
		start, last, wake := max(after+1, q.head), q.last, q.wake
		q.mu.Unlock()
		if start <= last {
			out, err := q.read(start, last, n)
			if len(out) > 0 {
				q.mu.Lock()
				q.peeked = max(q.peeked, out[len(out)-1].Seq)
				q.mu.Unlock()
			}
			q.readMu.RUnlock()
			if err != nil || len(out) > 0 {
				return out, err
			}
			// Everything in range was acked: wait for more.
		} else {
			q.readMu.RUnlock()
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
	// Close waits for reads in progress: Badger panics on a read after Close.
	q.db.closeMu.RLock()
	defer q.db.closeMu.RUnlock()
	if q.db.closed {
		return nil, fmt.Errorf("badgerq: peek %s: %w", q.name, errClosed)
	}
	q.mu.Lock()
	from := q.slots.segStart(start) // the key of the segment holding start
	q.mu.Unlock()
	txn := q.db.bdb.NewTransaction(false)
	defer txn.Discard()
	// No value prefetch: Badger would start a goroutine per entry to
	// fetch values that are mostly inline in the key's block anyway.
	it := txn.NewIterator(badger.IteratorOptions{Prefix: q.prefix})
	defer it.Close()
	out := make([]uplink.Entry, 0, min(uint64(n), last-start+1, 1024))
	var arena []byte // the values, copied into a few chunks rather than one allocation each
	var offs []int
	for it.Seek(entryKey(nil, q.prefix, from)); it.Valid() && len(out) < n; it.Next() {
		item := it.Item()
		first, count, err := parseSegKey(q.prefix, item.Key())
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", q.name, err)
		}
		if first > last {
			break
		}
		end := first + uint64(count-1)
		if end < start || q.allAcked(max(first, start), min(end, last)) {
			continue
		}
		if vs := int(item.ValueSize()); cap(arena)-len(arena) < vs {
			// Room for the entries still wanted if they are of this size.
			more := int(min(uint64(n-len(out)), last-first+1) / uint64(count))
			arena = make([]byte, 0, max(min(readChunk, vs*more), vs))
		}
		dst := arena[len(arena):]
		v, err := item.ValueCopy(dst) // append(dst[:0], value...): in place when it fits
		if err != nil {
			return nil, fmt.Errorf("badgerq: read %s seq %d: %w", q.name, first, err)
		}
		if len(v) <= cap(dst) {
			arena = arena[:len(arena)+len(v)]
		}
		if count == 1 {
			out = append(out, uplink.Entry{Seq: first, Data: v[:len(v):len(v)]})
			continue
		}
		if offs, err = decodeSeg(v, count, offs); err != nil {
			return nil, fmt.Errorf("stream %s segment %d: %w", q.name, first, err)
		}
		for i := range count {
			seq := first + uint64(i)
			if seq < start || seq > last || len(out) == n || q.isAcked(seq) {
				continue
			}
			// Capped: an append by the caller must not run into the next value.
			out = append(out, uplink.Entry{Seq: seq, Data: v[offs[i]:offs[i+1]:offs[i+1]]})
		}
	}
	return out, nil
}

// readChunk bounds the chunks Peek copies values into.
const readChunk = 64 << 10

// allAcked reports whether every seq from first to last is acked.
func (q *Queue) allAcked(first, last uint64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for seq := first; seq <= last; seq++ {
		if !q.removedLocked(seq) {
			return false
		}
	}
	return true
}

func (q *Queue) isAcked(seq uint64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.removedLocked(seq)
}

func (q *Queue) removedLocked(seq uint64) bool {
	return seq < q.head || seq > q.last || q.slots.get(seq)&slotRemoved != 0
}

// removeLocked marks one committed entry acked or dropped and reports
// whether it was still there.
func (q *Queue) removeLocked(seq uint64) bool {
	if q.removedLocked(seq) {
		return false
	}
	v := q.slots.get(seq)
	q.slots.set(seq, v|slotRemoved)
	q.backlog--
	q.bytes -= sizeOf(v)
	if q.open != nil && q.open.seq == seq {
		q.open = nil
	}
	return true
}

// advanceLocked moves head past removed entries.
func (q *Queue) advanceLocked() {
	for q.head <= q.last && q.slots.get(q.head)&slotRemoved != 0 {
		q.head++
	}
	q.slots.trim(q.slots.segStart(q.head)) // keep the head's segment whole
	if q.backlog == 0 {
		q.bytes = 0
	}
	for len(q.marks) > 1 && q.marks[1].seq <= q.head {
		q.marks = q.marks[1:]
	}
	if q.head > q.last {
		q.marks = nil
	}
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
	var segFirst, segLast uint64 // the segment checked last
	for _, s := range seqs {
		size := sizeOf(q.slots.get(s))
		if !q.removeLocked(s) {
			continue
		}
		q.unsynced += size
		if s < segFirst || s > segLast {
			// Checked below, once all acks of this call are in.
			segFirst, segLast, _ = q.slots.segOf(s) // s is within: it was not removed
			q.db.dels = append(q.db.dels, delReq{q: q, seq: segFirst, n: int(segLast - segFirst + 1)})
		}
		q.db.dels[len(q.db.dels)-1].bytes += size
	}
	// A segment's key goes only once all its records are acked or
	// dropped; until then its ack mark says which are.
	for i := queued; i < len(q.db.dels); i++ {
		d := &q.db.dels[i]
		if last := d.seq + uint64(d.n-1); !q.slots.allRemoved(d.seq, last) {
			*d = delReq{q: q, seq: last, mark: true, bytes: d.bytes}
		}
	}
	q.advanceLocked()
	if len(q.db.dels) > queued {
		q.db.cond.Signal()
	}
	return nil
}

// Stats returns a snapshot of the stream's counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := Stats{Backlog: q.backlog, LastSeq: q.last, Bytes: q.bytes, Dropped: q.dropped, Seal: slices.Clone(q.sealed)}
	if q.backlog > 0 {
		s.FirstSeq = q.head
		if len(q.marks) > 0 {
			s.Oldest = time.Unix(0, int64(q.marks[0].at))
		}
	}
	return s
}
