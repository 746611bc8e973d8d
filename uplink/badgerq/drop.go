package badgerq

import (
	"fmt"
	"slices"
	"time"
)

// Reasons reported in gap records and by DB.Dropped.
const (
	ReasonQuota    = "quota"     // a stream's or the database's quota
	ReasonDiskFull = "disk_full" // free space below Options.DropFreeBytes
)

func reasonIndex(reason string) int {
	if reason == ReasonDiskFull {
		return 1
	}
	return 0
}

// metaGap is the Badger UserMeta bit of a gap record entry, so that a
// reopened queue still knows which entries are gap records.
const metaGap byte = 1

type seqRun struct{ from, to uint64 }

type resize struct {
	seq uint64
	v   uint32
}

// tentative is one stream's state as the transaction being built would
// leave it. Its slices are append-only (sizes is copied before an element
// changes), so a struct copy is a snapshot.
type tentative struct {
	q        *Queue
	last     uint64
	state    []byte
	n        int64    // entries appended, gap records included
	bytes    int64    // their stored bytes
	sizes    []uint32 // their slots: seqs base+1…, base = the stream's last at the start
	vals     [][]byte // their stored bytes (nil for gap records, written by their own kv)
	segN     int      // records in the segment being filled (0: start a new one)
	segBytes int      // and their bytes

	dropping bool     // the fields below are set up
	cursor   uint64   // next seq the drop walk looks at
	removed  []uint64 // committed entries this transaction deletes
	freed    int64    // their stored bytes
	resizes  []resize // committed gap records rewritten in place (last one wins)
	resized  int64    // bytes those rewrites add
	restarts []seqRun // the segments left when writeSegments cut off a dropped front
	open     openGap  // the gap record the next contiguous drop may grow
	openWhy  string   // its reason
	hasOpen  bool
	dropN    [2]int64 // data records dropped, by reason index
}

// delta is the change of the stream's stored bytes.
func (t *tentative) delta() int64 { return t.bytes + t.resized - t.freed }

// txnPlan is the committer's view of the transaction being built.
type txnPlan struct {
	db       *DB
	tents    []*tentative // the streams the transaction changes
	ch       change       // the Append being admitted (reused: one at a time)
	locked   []*Queue
	streams  []*Queue // every stream (for Options.Quota)
	order    []*Queue // droppable streams, in DropOrder
	pressure bool     // free space below DropFreeBytes
}

func (db *DB) newPlan(pressure bool) *txnPlan {
	p := &txnPlan{db: db, pressure: pressure}
	p.ch.p = p
	db.mu.Lock()
	for _, q := range db.streams {
		p.streams = append(p.streams, q)
	}
	for _, name := range db.opt.DropOrder {
		if q := db.streams[name]; q != nil && q.opened && q.gap != nil {
			p.order = append(p.order, q)
		}
	}
	db.mu.Unlock()
	return p
}

// lock takes q's readMu for the rest of the transaction: from deciding that
// a gap record was not handed out until the commit is applied, no Peek
// reads q.
func (p *txnPlan) lock(q *Queue) {
	if slices.Contains(p.locked, q) {
		return
	}
	q.readMu.Lock()
	p.locked = append(p.locked, q)
}

func (p *txnPlan) unlock() {
	for _, q := range p.locked {
		q.readMu.Unlock()
	}
	p.locked = nil
}

func (p *txnPlan) droppable(q *Queue) bool { return slices.Contains(p.order, q) }

// tentOf returns the plan's tentative of q, or nil.
func (p *txnPlan) tentOf(q *Queue) *tentative {
	for _, t := range p.tents {
		if t.q == q {
			return t
		}
	}
	return nil
}

// change is what one Append adds to the plan: its key/values, and the
// plan's tentatives as they were before it, to undo it if it is refused
// or left for the next transaction. The plan's tentatives change in
// place; a struct copy is a snapshot (see tentative).
type change struct {
	p     *txnPlan
	saved []savedTent
	kvs   []kv
	n     int64 // entries not in kvs: data records and drops (see writeSegments)
	size  int64 // estimated transaction bytes of kvs and of those
}

type savedTent struct {
	t     *tentative
	was   tentative
	added bool // t was not in the plan before the change
}

// begin starts the plan's change for the next Append.
func (p *txnPlan) begin() *change {
	c := &p.ch
	c.saved, c.kvs, c.n, c.size = c.saved[:0], c.kvs[:0], 0, 0
	return c
}

// tent returns the tentative of q, saving it the first time the change
// touches it.
func (c *change) tent(q *Queue) *tentative {
	t := c.p.tentOf(q)
	if t == nil {
		t = &tentative{q: q, last: q.last, state: q.state}
		c.p.tents = append(c.p.tents, t)
		c.saved = append(c.saved, savedTent{t: t, added: true})
		return t
	}
	for i := range c.saved {
		if c.saved[i].t == t {
			return t
		}
	}
	c.saved = append(c.saved, savedTent{t: t, was: *t})
	return t
}

// undo puts the plan's tentatives back as they were before the change.
func (c *change) undo() {
	for i := len(c.saved) - 1; i >= 0; i-- {
		s := c.saved[i]
		if s.added {
			c.p.tents = slices.DeleteFunc(c.p.tents, func(t *tentative) bool { return t == s.t })
		} else {
			*s.t = s.was
		}
	}
	c.saved = c.saved[:0]
}

func (q *Queue) storedBytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes + q.unsynced
}

func (p *txnPlan) totalBytes(c *change) int64 {
	var sum int64
	for _, q := range p.streams {
		sum += q.storedBytes()
		if t := p.tentOf(q); t != nil {
			sum += t.delta()
		}
	}
	return sum
}

// admit prepares one Append: its entries, then whatever drops the quotas
// and free space require, as the plan's change (valid until the next
// admit). An error means nothing of it is kept.
func (p *txnPlan) admit(r *appendReq) (*change, error) {
	c := p.begin()
	if err := p.admitInto(c, r); err != nil {
		c.undo()
		return nil, err
	}
	return c, nil
}

func (p *txnPlan) admitInto(c *change, r *appendReq) error {
	db := p.db
	q := r.q
	var before int64
	if p.pressure {
		before = p.totalBytes(c)
	}
	t := c.tent(q)
	if err := db.prepare(c, r, t); err != nil {
		return err
	}

	if q.quota > 0 {
		if over := q.storedBytes() + t.delta() - q.quota; over > 0 {
			if !p.droppable(q) {
				return fmt.Errorf("%w: stream %s: %d more bytes would exceed its quota of %d, and it is not droppable",
					ErrQuota, q.name, over, q.quota)
			}
			got, err := p.drop(c, q, over, ReasonQuota)
			if err != nil {
				return err
			}
			if got < over {
				return fmt.Errorf("%w: stream %s: %d more bytes would exceed its quota of %d; only %d bytes of old records could be dropped",
					ErrQuota, q.name, over, q.quota, got)
			}
		}
	}
	if db.opt.Quota > 0 {
		if over := p.totalBytes(c) - db.opt.Quota; over > 0 {
			want := over
			for _, dq := range p.order {
				if over <= 0 {
					break
				}
				got, err := p.drop(c, dq, over, ReasonQuota)
				if err != nil {
					return err
				}
				over -= got
			}
			if over > 0 {
				return fmt.Errorf("%w: stream %s: %d more bytes would exceed the database quota of %d; only %d bytes of droppable records could be dropped",
					ErrQuota, q.name, want, db.opt.Quota, want-over)
			}
		}
	}
	if p.pressure {
		// Best effort: what cannot be dropped is still stored until free
		// space falls below MinFreeBytes, where every Append fails.
		over := p.totalBytes(c) - before
		for _, dq := range p.order {
			if over <= 0 {
				break
			}
			got, err := p.drop(c, dq, over, ReasonDiskFull)
			if err != nil {
				return err
			}
			over -= got
		}
	}
	return nil
}

// drop discards the oldest droppable records of q until its stored bytes
// shrink by want, net of the gap records written, or nothing droppable is
// left. It returns the net bytes freed.
func (p *txnPlan) drop(c *change, q *Queue, want int64, reason string) (int64, error) {
	p.lock(q)
	t := c.tent(q)
	reserve, err := gapReserve(q, t, reason)
	if err != nil {
		return 0, err
	}
	var net int64
	for net < want {
		got, progressed, err := p.dropPass(c, q, t, want-net, reserve, reason)
		if err != nil {
			return net, err
		}
		net += got
		if !progressed {
			break
		}
	}
	return net, nil
}

// gapReserve bounds the size of one gap record of q.
func gapReserve(q *Queue, t *tentative, reason string) (int64, error) {
	const big = 1 << 62
	stored, err := buildGap(q, big, big, big, reason, t.state)
	if err != nil {
		return 0, err
	}
	return int64(len(stored)) + 16, nil
}

func buildGap(q *Queue, seq, from, to uint64, reason string, state []byte) ([]byte, error) {
	payload, err := q.gap(from, to, reason)
	if err != nil {
		return nil, fmt.Errorf("%w: stream %s: gap record %d..%d: %w", ErrGap, q.name, from, to, err)
	}
	if q.seal == nil {
		return payload, nil
	}
	stored, _, err := q.seal(seq, payload, state)
	if err != nil {
		return nil, fmt.Errorf("%w: stream %s gap record seq %d: %w", ErrSeal, q.name, seq, err)
	}
	return stored, nil
}

// dropPass walks q from its oldest entry, deleting data records and the
// open gap record when it joins the range, until the bytes freed cover
// want plus a reserve per gap record to write; then it writes one gap
// record per contiguous range (growing the open one in place where the
// range continues it). A gap record that Peek has handed out is kept: it
// may already be delivered. It returns the net bytes freed.
func (p *txnPlan) dropPass(c *change, q *Queue, t *tentative, want, reserve int64, reason string) (net int64, progressed bool, err error) {
	runs, removed, freed, recs := q.selectDrops(t, want, reserve, reason)
	if len(runs) == 0 {
		return 0, false, nil
	}
	var gapBytes int64
	for i, run := range runs {
		var d int64
		if i == 0 && t.hasOpen && t.openWhy == reason && run.from == t.open.to+1 && len(t.state) == 0 {
			d, err = p.growOpenGap(c, q, t, run, reason)
		} else {
			d, err = p.appendGap(c, q, t, run, reason)
		}
		if err != nil {
			return 0, false, err
		}
		gapBytes += d
	}
	// Deleted or rewritten per segment when the transaction is complete
	// (writeSegments); counted as a delete each.
	c.size += int64(len(removed)) * (int64(len(q.prefix)) + 10 + 2 + 10)
	c.n += 2*int64(len(removed)) + 1 // a segment's delete, its ack mark's, a cut front's rest
	t.removed = append(t.removed, removed...)
	t.freed += freed
	t.dropN[reasonIndex(reason)] += recs
	return freed - gapBytes, true, nil
}

// selectDrops picks the oldest records of q to discard until want bytes
// (plus reserve per gap record to write) are freed, as runs of seqs to
// report: an open gap record of the same reason that borders a run joins
// it (it is deleted and its range reported again, in one record).
func (q *Queue) selectDrops(t *tentative, want, reserve int64, reason string) (runs []seqRun, removed []uint64, freed, recs int64) {
	cur := -1 // index of the run being extended
	q.mu.Lock()
	defer q.mu.Unlock()
	if !t.dropping {
		t.dropping = true
		t.cursor = q.head
		if o := q.open; o != nil && o.seq > q.peeked && !q.removedLocked(o.seq) {
			t.open, t.openWhy, t.hasOpen = *o, q.openWhy, true
		}
	}
	need := want
	s := max(t.cursor, q.head)
	for ; s <= q.last && freed < need; s++ {
		v := q.slots.get(s)
		if v&slotRemoved != 0 {
			cur = -1
			continue
		}
		if v&slotGap != 0 {
			lo := s
			if cur >= 0 {
				lo = runs[cur].from
			}
			if t.hasOpen && t.open.seq == s && t.open.to+1 == lo && t.openWhy == reason {
				// The open gap record joins the range: delete it and report
				// its range, what follows it and itself in one record.
				if cur < 0 {
					runs = append(runs, seqRun{t.open.from, s})
					cur = len(runs) - 1
					need += reserve
				} else {
					runs[cur] = seqRun{t.open.from, s}
				}
				for _, r := range t.resizes {
					if r.seq == s {
						v = r.v // grown in place earlier in this transaction
					}
				}
				removed = append(removed, s)
				freed += sizeOf(v)
				t.hasOpen = false
				continue
			}
			cur = -1 // kept: it ends the range
			continue
		}
		if cur < 0 {
			runs = append(runs, seqRun{s, s})
			cur = len(runs) - 1
			need += reserve
		} else {
			runs[cur].to = s
		}
		removed = append(removed, s)
		freed += sizeOf(v)
		recs++
	}
	t.cursor = s
	return runs, removed, freed, recs
}

// growOpenGap grows the open gap record in place (same seq) to cover run
// too. Only for streams whose Seal keeps no state, so sealing it again is
// harmless. It returns the bytes the record grew by.
func (p *txnPlan) growOpenGap(c *change, q *Queue, t *tentative, run seqRun, reason string) (int64, error) {
	db := p.db
	stored, err := buildGap(q, t.open.seq, t.open.from, run.to, reason, t.state)
	if err != nil {
		return 0, err
	}
	var grew int64
	nv := uint32(len(stored)) | slotGap | slotStart
	k := db.keys.key(q.prefix, t.open.seq)
	if t.open.seq > q.last {
		idx := t.open.seq - q.last - 1
		t.sizes = slices.Clone(t.sizes)
		d := sizeOf(nv) - sizeOf(t.sizes[idx])
		t.sizes[idx] = nv
		t.bytes += d
		grew = d
	} else {
		old := q.slotOf(t.open.seq)
		for _, r := range t.resizes {
			if r.seq == t.open.seq {
				old = r.v
			}
		}
		d := sizeOf(nv) - sizeOf(old)
		t.resizes = append(t.resizes, resize{t.open.seq, nv})
		t.resized += d
		grew = d
	}
	c.kvs = append(c.kvs, kv{k: k, v: stored, meta: metaGap})
	c.size += db.estimate(k, stored)
	t.open.to = run.to
	return grew, nil
}

// appendGap writes a new gap record reporting run, sealed at the next seq,
// and makes it the open gap record. It returns its stored size.
func (p *txnPlan) appendGap(c *change, q *Queue, t *tentative, run seqRun, reason string) (int64, error) {
	db := p.db
	seq := t.last + 1
	payload, err := q.gap(run.from, run.to, reason)
	if err != nil {
		return 0, fmt.Errorf("%w: stream %s: gap record %d..%d: %w", ErrGap, q.name, run.from, run.to, err)
	}
	stored := payload
	if q.seal != nil {
		s, ns, err := q.seal(seq, payload, t.state)
		if err != nil {
			return 0, fmt.Errorf("%w: stream %s gap record seq %d: %w", ErrSeal, q.name, seq, err)
		}
		stored, t.state = s, ns
	}
	k := db.keys.key(q.prefix, seq)
	c.kvs = append(c.kvs, kv{k: k, v: stored, meta: metaGap})
	c.size += db.estimate(k, stored)
	t.last = seq
	t.n++
	t.bytes += int64(len(stored))
	t.sizes = append(t.sizes, uint32(len(stored))|slotGap|slotStart)
	t.vals = append(t.vals, nil)
	t.segN, t.segBytes = 0, 0 // a gap record is a segment of its own
	t.open, t.openWhy, t.hasOpen = openGap{seq: seq, from: run.from, to: run.to}, reason, true
	return int64(len(stored)), nil
}

func (q *Queue) slotOf(seq uint64) uint32 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.slots.get(seq)
}

// committed publishes a committed transaction's effect on this stream. A
// segment the transaction rewrote whose records have all been acked
// meanwhile gets its delete appended to dels.
func (q *Queue) committed(t *tentative, dels *[]delReq) (dropped [2]int64) {
	q.state = t.state
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sealed = t.state
	for _, v := range t.sizes {
		q.slots.push(v)
	}
	grew := t.last > q.last
	if grew {
		q.markLocked(q.last+1, time.Now())
	}
	q.last = t.last
	q.backlog += t.n
	q.bytes += t.bytes
	for _, r := range t.resizes {
		if old := q.slots.get(r.seq); old&slotRemoved == 0 {
			q.bytes += sizeOf(r.v) - sizeOf(old)
			q.slots.set(r.seq, r.v)
		}
	}
	for _, r := range t.restarts {
		q.slots.set(r.from, q.slots.get(r.from)|slotStart)
	}
	for _, seq := range t.removed {
		q.removeLocked(seq)
	}
	for _, r := range t.restarts {
		// An Ack of the rest of the segment while the transaction was
		// built could not delete it: the dropped records were not yet
		// removed (or it deleted the segment's old key).
		if q.slots.allRemoved(r.from, r.to) {
			*dels = append(*dels, delReq{q: q, seq: r.from, n: int(r.to - r.from + 1)})
		}
	}
	if t.dropping {
		q.open = nil
		if t.hasOpen {
			o := t.open
			q.open, q.openWhy = &o, t.openWhy
		}
		q.dropped += t.dropN[0] + t.dropN[1]
	}
	q.advanceLocked()
	if grew {
		close(q.wake)
		q.wake = make(chan struct{})
	}
	return t.dropN
}
