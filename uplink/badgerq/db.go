package badgerq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Errors. Every error from this package wraps one of these (or
// uplink.ErrClosed, or a context error).
var (
	ErrOptions     = errors.New("badgerq: invalid options")
	ErrStreamName  = errors.New("badgerq: invalid stream name")
	ErrStreamInUse = errors.New("badgerq: stream already open")
	ErrCorrupt     = errors.New("badgerq: corrupt database")
	ErrTooLarge    = errors.New("badgerq: append too large for one transaction")
	ErrDiskFull    = errors.New("badgerq: disk full")
	ErrSeal        = errors.New("badgerq: seal failed")
	ErrCommit      = errors.New("badgerq: commit failed")
	ErrArgument    = errors.New("badgerq: invalid argument")
	// ErrQuota: the Append would exceed a quota and not enough droppable
	// records were left to make room; nothing of it was stored.
	ErrQuota = errors.New("badgerq: quota exceeded")
	// ErrGap: a stream's Gap function failed; the Append that needed room
	// was not stored.
	ErrGap = errors.New("badgerq: gap record failed")
)

// DB is one Badger database holding every stream's queue. It owns the
// committer and the value-log GC goroutines.
type DB struct {
	opt Options
	log *slog.Logger
	bdb *badger.DB

	keys           keyArena // the committer's entry keys
	segBuf         []byte   // the committer's segment values (reused once a commit returns)
	budgetBytes    int64    // what one transaction may hold (below Badger's limits)
	budgetCount    int64
	valueThreshold int64
	maxValue       int64

	mu       sync.Mutex
	cond     *sync.Cond // committer waits here for work
	idle     *sync.Cond // Flush waits here for the committer to finish what it took
	busy     bool       // the committer holds work it has not committed yet
	diskFull bool       // the last free-space check refused (committer only)
	pending  []*appendReq
	dels     []delReq
	stopping bool
	streams  map[string]*Queue

	reqs sync.Pool // of *appendReq, each with its answer channel

	closeMu sync.RWMutex // Peek reads hold it shared; Close exclusively
	closed  bool         // Badger is closed (under closeMu)

	statMu  sync.Mutex
	dropped [2]uint64 // records discarded since Open, by reason index

	closing   chan struct{} // closed by Close: wakes Peek waiters and GC
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

type appendReq struct {
	ctx  context.Context
	q    *Queue
	data [][]byte // private copies, in buf
	done chan error
	one  [1][]byte // data of a one-payload Append
	buf  []byte    // kept with the request in the pool: the copies of the next Append
}

// newReq returns a request for n payloads, from the pool when one is
// free: an Append per reading costs no channel of its own.
func (db *DB) newReq(ctx context.Context, q *Queue, n int) *appendReq {
	r, _ := db.reqs.Get().(*appendReq)
	if r == nil {
		r = &appendReq{done: make(chan error, 1)}
	}
	r.ctx, r.q = ctx, q
	if n == 1 {
		r.data = r.one[:]
	} else {
		r.data = make([][]byte, n)
	}
	return r
}

// freeReq returns r to the pool once nothing refers to it: its answer was
// received (the committer sends exactly one, after the commit, when
// neither it nor Badger reads the copies any more) or it was never
// enqueued.
func (db *DB) freeReq(r *appendReq) {
	buf := r.buf
	if cap(buf) > maxPooledBuf {
		buf = nil
	}
	*r = appendReq{done: r.done, buf: buf[:0]}
	db.reqs.Put(r)
}

// maxPooledBuf bounds the copy buffer a pooled request keeps.
const maxPooledBuf = 4 << 10

// delReq deletes the segment of n records from seq (and its ack mark),
// or with mark, writes the ack mark of the segment ending at seq.
type delReq struct {
	q     *Queue
	seq   uint64
	n     int
	mark  bool
	bytes int64 // the acked bytes it makes free for good (see Queue.unsynced)
}

// Open opens (or creates) the database in o.Dir with SyncWrites on,
// recovers every stream's state and starts the committer and GC goroutines.
func Open(o Options) (*DB, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("queue", "badgerq")
	bdb, err := badger.Open(o.badgerOptions(log))
	if err != nil && strings.Contains(err.Error(), "Create a new file") {
		// A kill -9 between Badger creating a .mem or .vlog file and sizing
		// it leaves an empty file that fails the next open once; that open
		// removes it (dgraph-io/badger#2207). Badger flattens the cause to
		// text, so errors.Is cannot match it.
		log.Warn("store: retrying open after an interrupted file creation", "err", err)
		bdb, err = badger.Open(o.badgerOptions(log))
	}
	if err != nil {
		return nil, fmt.Errorf("badgerq: open %s: %w", o.Dir, err)
	}
	db := &DB{
		opt:            o,
		log:            log,
		bdb:            bdb,
		budgetBytes:    bdb.MaxBatchSize() * 9 / 10,
		budgetCount:    bdb.MaxBatchCount() * 9 / 10,
		valueThreshold: o.Profile.ValueThreshold,
		maxValue:       o.Profile.ValueLogFileSize,
		streams:        make(map[string]*Queue),
		closing:        make(chan struct{}),
	}
	db.cond = sync.NewCond(&db.mu)
	db.idle = sync.NewCond(&db.mu)
	if err := db.recover(); err != nil {
		return nil, errors.Join(err, bdb.Close())
	}
	db.wg.Add(2)
	go db.commitLoop()
	go db.gcLoop()
	return db, nil
}

// recover loads every stream's meta key and scans its entry keys (keys
// only) for head, backlog, bytes and holes left by out-of-order acks.
func (db *DB) recover() error {
	return db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(metaTag)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			name := string(item.Key()[len(metaTag):])
			if err := validName(name); err != nil {
				return fmt.Errorf("%w: meta key %q: %w", ErrCorrupt, item.Key(), err)
			}
			val, err := item.ValueCopy(nil)
			if err != nil {
				return fmt.Errorf("badgerq: read meta of stream %s: %w", name, err)
			}
			last, state, err := decodeMeta(val)
			if err != nil {
				return fmt.Errorf("stream %s: %w", name, err)
			}
			q := newQueue(db, name, last, state)
			if err := q.scan(txn); err != nil {
				return err
			}
			db.streams[name] = q
			db.log.Debug("recovered stream", "stream", name, "last", q.last, "head", q.head, "backlog", q.backlog)
		}
		return nil
	})
}

// Stream returns the queue of one stream, creating it on first use. Each
// name can be opened once per DB.
func (db *DB) Stream(name string, o StreamOptions) (*Queue, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	if o.Quota < 0 || (o.Quota > 0 && o.Quota < MinQuota) {
		return nil, fmt.Errorf("%w: stream %s: Quota %d: want 0 (none) or at least %d bytes", ErrOptions, name, o.Quota, MinQuota)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.stopping {
		return nil, fmt.Errorf("badgerq: stream %s: %w", name, errClosed)
	}
	q := db.streams[name]
	if q == nil {
		q = newQueue(db, name, 0, nil)
		db.streams[name] = q
	}
	if q.opened {
		return nil, fmt.Errorf("%w: %s", ErrStreamInUse, name)
	}
	q.opened = true
	q.seal = o.Seal
	q.gap = o.Gap
	q.quota = o.Quota
	return q, nil
}

// Dropped returns how many records were discarded since Open, by reason
// (ReasonQuota, ReasonDiskFull); gap records themselves are not counted.
func (db *DB) Dropped() map[string]uint64 {
	db.statMu.Lock()
	defer db.statMu.Unlock()
	return map[string]uint64{ReasonQuota: db.dropped[0], ReasonDiskFull: db.dropped[1]}
}

// Close flushes queued appends and acks, stops the committer and GC
// goroutines, waits for them and closes Badger. Blocked Peeks return
// uplink.ErrClosed. Close is idempotent.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.mu.Lock()
		db.stopping = true
		db.cond.Broadcast()
		db.mu.Unlock()
		close(db.closing)
		db.wg.Wait()
		db.closeMu.Lock()
		db.closed = true
		if err := db.bdb.Close(); err != nil {
			db.closeErr = fmt.Errorf("badgerq: close: %w", err)
		}
		db.closeMu.Unlock()
	})
	return db.closeErr
}

func (db *DB) enqueueAppend(r *appendReq) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.stopping {
		return errClosed
	}
	db.pending = append(db.pending, r)
	db.cond.Signal()
	return nil
}

// commitLoop is the committer: it takes everything waiting and commits it
// in as few transactions as the limits allow.
func (db *DB) commitLoop() {
	defer db.wg.Done()
	for {
		db.mu.Lock()
		db.busy = false
		db.idle.Broadcast()
		for len(db.pending) == 0 && len(db.dels) == 0 && !db.stopping {
			db.cond.Wait()
		}
		reqs, dels, stop := db.pending, db.dels, db.stopping
		db.pending, db.dels = nil, nil
		db.busy = true
		db.mu.Unlock()
		for len(reqs) > 0 || len(dels) > 0 {
			nr, nd := db.commitOnce(reqs, dels)
			reqs, dels = reqs[nr:], dels[nd:]
			if len(reqs) > 0 || len(dels) > 0 {
				// The transaction was full: fill the next one with what
				// arrived meanwhile too, rather than sync the rest alone.
				db.mu.Lock()
				reqs, dels = append(reqs, db.pending...), append(dels, db.dels...)
				db.pending, db.dels, stop = nil, nil, db.stopping
				db.mu.Unlock()
			}
		}
		if stop {
			// Append and Ack refuse new work once stopping is set, so
			// everything queued before it has now been handled.
			db.mu.Lock()
			db.busy = false
			db.idle.Broadcast()
			db.mu.Unlock()
			return
		}
	}
}

// flush waits until every append and ack delete queued before it is
// committed (a backup then holds no record that was already acked).
func (db *DB) flush() {
	db.mu.Lock()
	defer db.mu.Unlock()
	for (len(db.pending) > 0 || len(db.dels) > 0 || db.busy) && !db.stopping {
		db.idle.Wait()
	}
}

type kv struct {
	k, v []byte
	del  bool
	meta byte
}

func (db *DB) estimate(k, v []byte) int64 {
	// Mirrors badger's Txn.checkSize: value inline or a 12-byte pointer,
	// 2 meta bytes, 10 for the version suffix.
	if int64(len(v)) < db.valueThreshold {
		return int64(len(k)+len(v)) + 2 + 10
	}
	return int64(len(k)) + 12 + 2 + 10
}

func (db *DB) metaEstimate(q *Queue, t *tentative) int64 {
	return int64(len(q.metaKey)+metaHdrLen+len(t.state)) + 2 + 10
}

// commitOnce builds and commits one transaction from the front of reqs and
// dels and reports how many of each it consumed (at least one in total):
// appends first, up to MaxBatch entries, then up to MaxBatch ack deletes
// in the room Badger's limits leave, riding in the same sync.
func (db *DB) commitOnce(reqs []*appendReq, dels []delReq) (nr, nd int) {
	txn := db.bdb.NewTransaction(true)
	defer txn.Discard()
	// Segment values of the last transaction: Badger is done with them
	// once its commit returned.
	if cap(db.segBuf) <= maxSegBytes*4 {
		db.segBuf = db.segBuf[:0]
	} else {
		db.segBuf = nil
	}
	db.releaseDels(dels[:min(len(dels), db.opt.MaxBatch)])
	var full error
	var pressure bool
	if len(reqs) > 0 {
		full, pressure = db.checkFree()
	}
	plan := db.newPlan(pressure)
	defer plan.unlock() // after the commit is applied (defers run last-in first-out)
	b := &txnBatch{txn: txn}
	nr, ok := db.addAppends(b, plan, reqs, full)
	if !ok {
		return nr, 0
	}
	nEntries := b.count
	var metaSize int64
	for _, t := range plan.tents {
		metaSize += db.metaEstimate(t.q, t)
	}
	nd = db.addDeletes(b, dels, metaSize, int64(len(plan.tents)))
	if b.count == 0 && len(plan.tents) == 0 {
		return nr, nd
	}
	for _, t := range plan.tents {
		q := t.q
		if err := db.writeSegments(b, t); err != nil {
			db.fail(b.included, fmt.Errorf("%w: stream %s: %w", ErrCommit, q.name, err))
			return nr, nd
		}
		if err := txn.Set(q.metaKey, encodeMeta(t.last, t.state)); err != nil {
			db.fail(b.included, fmt.Errorf("%w: stream %s: set meta: %w", ErrCommit, q.name, err))
			return nr, nd
		}
	}
	if err := txn.Commit(); err != nil {
		err = fmt.Errorf("%w: %d appends (%d entries), %d acks: %w", ErrCommit, len(b.included), nEntries, nd, err)
		db.log.Error("commit failed", "err", err)
		db.fail(b.included, err)
		return nr, nd
	}
	db.applied(plan)
	for _, r := range b.included {
		r.done <- nil
	}
	return nr, nd
}

// releaseDels stops counting the bytes of the acks in dels as stored: the
// transaction being built commits their deletes together with the
// appends that may take their room.
func (db *DB) releaseDels(dels []delReq) {
	for i := range dels {
		d := &dels[i]
		if d.bytes != 0 {
			d.q.mu.Lock()
			d.q.unsynced -= d.bytes
			d.q.mu.Unlock()
			d.bytes = 0
		}
	}
}

// txnBatch is the transaction being built: its entries (count, estimated
// size) and the appends it holds.
type txnBatch struct {
	txn         *badger.Txn
	count, size int64
	included    []*appendReq
}

// addAppends admits requests from the front of reqs into b until MaxBatch
// entries or Badger's limits. It answers the requests it refuses and
// reports how many it consumed; false after a failed Set, when every
// request of the transaction has been answered.
func (db *DB) addAppends(b *txnBatch, plan *txnPlan, reqs []*appendReq, full error) (nr int, ok bool) {
	maxBatch := int64(db.opt.MaxBatch)
	for ; nr < len(reqs); nr++ {
		r := reqs[nr]
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		if full != nil {
			r.done <- full
			continue
		}
		ch, err := plan.admit(r)
		if err != nil {
			r.done <- err
			continue
		}
		var metaSize int64
		for _, t := range plan.tents {
			metaSize += db.metaEstimate(t.q, t)
		}
		n := int64(len(ch.kvs)) + ch.n
		metas := int64(len(plan.tents))
		fitsBadger := b.size+ch.size+metaSize <= db.budgetBytes && b.count+n+metas < db.budgetCount
		if !fitsBadger || b.count+n > maxBatch {
			if b.count > 0 {
				ch.undo()
				break // next transaction
			}
			if !fitsBadger {
				ch.undo()
				r.done <- fmt.Errorf("%w: stream %s: %d entries, ~%d bytes; one transaction holds ~%d bytes, %d entries",
					ErrTooLarge, r.q.name, n, ch.size, db.budgetBytes, db.budgetCount)
				continue
			}
			// Alone and larger than MaxBatch: commit it by itself.
		}
		if err := b.set(ch); err != nil {
			// Estimates mirror Badger's checks, so this is unexpected.
			err = fmt.Errorf("%w: stream %s: set: %w", ErrCommit, r.q.name, err)
			r.done <- err
			db.fail(b.included, err)
			return nr + 1, false
		}
		b.count += n
		b.size += ch.size
		b.included = append(b.included, r)
	}
	return nr, true
}

// set adds one change's key/values to the transaction.
func (b *txnBatch) set(ch *change) error {
	for _, e := range ch.kvs {
		var err error
		switch {
		case e.del:
			err = b.txn.Delete(e.k)
		case e.meta != 0:
			err = b.txn.SetEntry(badger.NewEntry(e.k, e.v).WithMeta(e.meta))
		default:
			err = b.txn.Set(e.k, e.v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// addDeletes adds up to MaxBatch ack deletes from the front of dels, as
// many as fit beside the entries and the metas (metaSize bytes, metas
// keys) still to come, and reports how many it consumed.
func (db *DB) addDeletes(b *txnBatch, dels []delReq, metaSize, metas int64) (nd int) {
	for nd < len(dels) && nd < db.opt.MaxBatch {
		d := dels[nd]
		var k, mk, mv []byte
		if d.mark {
			if mv = d.q.ackMark(d.seq); mv == nil {
				nd++ // the segment went meanwhile
				continue
			}
			mk = db.keys.ack(d.q.ackPrefix, d.seq)
		} else {
			k = db.keys.seg(d.q.prefix, d.seq, d.n)
			if d.n > 1 {
				mk = db.keys.ack(d.q.ackPrefix, d.seq+uint64(d.n-1))
			}
		}
		es := int64(len(k)+len(mk)+len(mv)) + 2*(2+10)
		if b.size+metaSize+es > db.budgetBytes || b.count+metas+2 >= db.budgetCount {
			break
		}
		var err error
		if k != nil {
			err = b.txn.Delete(k)
		}
		if err == nil && mk != nil {
			if d.mark {
				err = b.txn.Set(mk, mv)
			} else {
				err = b.txn.Delete(mk)
			}
		}
		if err != nil {
			db.log.Error("ack delete refused; entry comes back after restart", "stream", d.q.name, "seq", d.seq, "err", err)
			nd++
			continue
		}
		b.count += 2
		b.size += es
		nd++
	}
	return nd
}

// applied publishes a committed transaction's effect on its streams.
func (db *DB) applied(plan *txnPlan) {
	var dropped [2]int64
	var dels []delReq
	for _, t := range plan.tents {
		q := t.q
		d := q.committed(t, &dels)
		dropped[0] += d[0]
		dropped[1] += d[1]
		if d[0]+d[1] > 0 {
			db.log.Debug("discarded oldest records to make room", "stream", q.name,
				"quota", d[0], "disk_full", d[1], "first_kept", q.Stats().FirstSeq)
		}
	}
	if len(dels) > 0 {
		db.mu.Lock()
		db.dels = append(db.dels, dels...)
		db.cond.Signal()
		db.mu.Unlock()
	}
	if dropped[0]+dropped[1] > 0 {
		db.statMu.Lock()
		db.dropped[0] += uint64(dropped[0])
		db.dropped[1] += uint64(dropped[1])
		db.statMu.Unlock()
	}
}

// prepare assigns seqs to one request's payloads, seals them and adds
// the key/values and their estimated transaction size to c; t advances.
func (db *DB) prepare(c *change, r *appendReq, t *tentative) error {
	for _, p := range r.data {
		seq := t.last + 1
		stored := p
		if r.q.seal != nil {
			s, ns, err := r.q.seal(seq, p, t.state)
			if err != nil {
				return fmt.Errorf("%w: stream %s seq %d: %w", ErrSeal, r.q.name, seq, err)
			}
			stored, t.state = s, ns
		}
		if int64(len(stored)) > min(db.maxValue, maxEntrySize) {
			return fmt.Errorf("%w: stream %s: entry of %d bytes exceeds the value-log file size %d (or 1 GB)",
				ErrTooLarge, r.q.name, len(stored), db.maxValue)
		}
		// Estimated as a key of its own: more than its share of a segment.
		c.size += db.estimate(r.q.prefix, stored) + 8
		c.n++
		v := uint32(len(stored))
		if t.segN == 0 || t.segN >= maxSegRecords || t.segBytes+len(stored) > maxSegBytes {
			v |= slotStart
			t.segN, t.segBytes = 0, 0
		}
		t.segN++
		t.segBytes += len(stored)
		t.last = seq
		t.n++
		t.bytes += int64(len(stored))
		t.sizes = append(t.sizes, v)
		t.vals = append(t.vals, stored)
	}
	return nil
}

func (db *DB) fail(rs []*appendReq, err error) {
	for _, r := range rs {
		r.done <- err
	}
}

// checkFree returns ErrDiskFull when the filesystem is below MinFreeBytes,
// and pressure when it is below DropFreeBytes. Once full, the store stays
// full until an eighth of MinFreeBytes more is free again, so that the
// few bytes Badger's background work frees and takes do not let appends
// through one at a time. Called by the committer only.
func (db *DB) checkFree() (full error, pressure bool) {
	if db.opt.MinFreeBytes < 0 && db.opt.DropFreeBytes <= 0 {
		return nil, false
	}
	free, err := freeBytes(db.opt.Dir)
	if err != nil {
		db.log.Warn("cannot read free space", "dir", db.opt.Dir, "err", err)
		return nil, false
	}
	need := db.opt.MinFreeBytes
	if db.diskFull {
		need += db.opt.MinFreeBytes / 8
	}
	db.diskFull = db.opt.MinFreeBytes >= 0 && free < need
	if db.diskFull {
		return fmt.Errorf("%w: %s has %d bytes free, need at least %d", ErrDiskFull, db.opt.Dir, free, need), false
	}
	return nil, db.opt.DropFreeBytes > 0 && free < db.opt.DropFreeBytes
}

// gcLoop runs value-log GC every GCInterval until Close.
func (db *DB) gcLoop() {
	defer db.wg.Done()
	t := time.NewTicker(db.opt.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-db.closing:
			return
		case <-t.C:
		}
		for rewrites := 0; ; rewrites++ {
			select {
			case <-db.closing:
				return
			default:
			}
			err := db.bdb.RunValueLogGC(0.5)
			if err != nil {
				if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
					db.log.Warn("value-log GC", "err", err)
				} else if rewrites > 0 {
					db.log.Debug("value-log GC", "rewrites", rewrites)
				}
				break
			}
		}
	}
}
