package badgerq

import (
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// writeSegments adds to the transaction what t leaves to the end: its data
// records, one key per segment, and the deletes of the records it drops,
// per segment: a segment whose records are all gone is deleted; one whose
// front was dropped is rewritten as its remaining records under the key of
// the first of them (so a restart does not bring the dropped ones back).
func (db *DB) writeSegments(b *txnBatch, t *tentative) error {
	q := t.q
	base := t.last - uint64(len(t.sizes))
	buf := db.segBuf // shared by the streams of the transaction: appended to
	for i := 0; i < len(t.sizes); {
		if t.sizes[i]&slotGap != 0 {
			i++ // written by its own kv
			continue
		}
		j := i + 1
		for j < len(t.sizes) && t.sizes[j]&(slotStart|slotGap) == 0 {
			j++
		}
		first := base + 1 + uint64(i)
		var v []byte
		if j-i == 1 {
			v = t.vals[i]
		} else {
			start := len(buf)
			buf = encodeSeg(buf, t.vals[i:j])
			v = buf[start:len(buf):len(buf)]
		}
		if err := b.txn.Set(db.keys.seg(q.prefix, first, j-i), v); err != nil {
			return fmt.Errorf("set segment %d+%d: %w", first, j-i, err)
		}
		i = j
	}
	db.segBuf = buf
	return db.dropSegments(b, t)
}

// dropSegments deletes or cuts the committed segments holding t.removed.
// The drop walk takes records in seq order from the head, so in each
// segment it touches, every record up to the last one it took is gone.
func (db *DB) dropSegments(b *txnBatch, t *tentative) error {
	q := t.q
	var first, last, upto uint64 // the segment at hand and the last seq dropped from it
	flush := func() error {
		if upto == 0 {
			return nil
		}
		q.mu.Lock()
		rest := !q.slots.allRemoved(upto+1, last)
		q.mu.Unlock()
		n := int(last - first + 1)
		old := db.keys.seg(q.prefix, first, n)
		if err := b.txn.Delete(old); err != nil {
			return fmt.Errorf("delete segment %d+%d: %w", first, n, err)
		}
		if !rest {
			if n > 1 {
				if err := b.txn.Delete(db.keys.ack(q.ackPrefix, last)); err != nil {
					return fmt.Errorf("delete the ack mark of segment %d+%d: %w", first, n, err)
				}
			}
			return nil
		}
		return db.cutSegment(b, t, old, first, n, upto+1)
	}
	for _, s := range t.removed {
		if upto != 0 && s >= first && s <= last {
			upto = max(upto, s)
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		q.mu.Lock()
		var ok bool
		first, last, ok = q.slots.segOf(s)
		q.mu.Unlock()
		upto = s
		if !ok {
			// Acked meanwhile with its whole segment, which went below
			// the head's: the Ack deletes it.
			upto = 0
		}
	}
	return flush()
}

// cutSegment writes the records from seq from on of the committed segment
// stored under old (n records from first) as a segment of their own.
func (db *DB) cutSegment(b *txnBatch, t *tentative, old []byte, first uint64, n int, from uint64) error {
	q := t.q
	rtxn := db.bdb.NewTransaction(false)
	defer rtxn.Discard()
	item, err := rtxn.Get(old)
	if err != nil {
		return fmt.Errorf("read segment %d+%d to cut it: %w", first, n, err)
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return fmt.Errorf("read segment %d+%d to cut it: %w", first, n, err)
	}
	offs, err := decodeSeg(v, n, nil)
	if err != nil {
		return fmt.Errorf("segment %d+%d: %w", first, n, err)
	}
	skip := int(from - first)
	recs := make([][]byte, 0, n-skip)
	for i := skip; i < n; i++ {
		recs = append(recs, v[offs[i]:offs[i+1]])
	}
	nv := recs[0]
	if len(recs) > 1 {
		nv = encodeSeg(nil, recs)
	}
	if err := b.txn.SetEntry(badger.NewEntry(db.keys.seg(q.prefix, from, len(recs)), nv)); err != nil {
		return fmt.Errorf("set the rest of segment %d+%d from %d: %w", first, n, from, err)
	}
	t.restarts = append(t.restarts, seqRun{from, first + uint64(n-1)})
	return nil
}
