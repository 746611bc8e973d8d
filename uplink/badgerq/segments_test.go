package badgerq

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func segCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// peekAll returns every seq and payload Peek hands out after 0.
func peekAll(t *testing.T, q *Queue) (seqs []uint64, data []string) {
	t.Helper()
	if q.Stats().Backlog == 0 {
		return nil, nil
	}
	es, err := q.Peek(segCtx(t), 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		seqs = append(seqs, e.Seq)
		data = append(data, string(e.Data))
	}
	return seqs, data
}

func payloads(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "%s-%d", prefix, i)
	}
	return out
}

// countKeys counts the entry keys and ack marks of a stream in a closed store.
func countKeys(t *testing.T, dir, stream string) (entries, marks int) {
	t.Helper()
	bdb, err := openBadger(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	err = bdb.View(func(txn *badger.Txn) error {
		for _, p := range []struct {
			prefix []byte
			n      *int
		}{{entryPrefix(stream), &entries}, {ackPrefix(stream), &marks}} {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: p.prefix})
			for it.Rewind(); it.Valid(); it.Next() {
				*p.n++
			}
			it.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return entries, marks
}

// One Append of many records is one segment; acks out of order and
// partial: acked records are never delivered again, before or after a
// reopen, and the segment's key goes with its last record.
func TestSegmentPartialAcks(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	q, err := db.Stream("s", StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := segCtx(t)
	if err := q.Append(ctx, payloads("a", 10)...); err != nil {
		t.Fatal(err)
	}
	if err := q.Append(ctx, payloads("b", 300)...); err != nil { // 3 segments of at most maxSegRecords
		t.Fatal(err)
	}
	if err := q.Ack(5, 2, 9, 3, 150, 1); err != nil {
		t.Fatal(err)
	}
	want := func() []uint64 {
		var w []uint64
		for s := uint64(1); s <= 310; s++ {
			if !slices.Contains([]uint64{1, 2, 3, 5, 9, 150}, s) {
				w = append(w, s)
			}
		}
		return w
	}()
	seqs, data := peekAll(t, q)
	if !slices.Equal(seqs, want) || data[0] != "a-3" || data[len(data)-1] != "b-299" {
		t.Fatalf("after partial acks Peek gives %v… %q…", seqs[:min(10, len(seqs))], data[:min(3, len(data))])
	}
	if es, err := q.Peek(ctx, 149, 2); err != nil || len(es) != 2 || es[0].Seq != 151 || string(es[0].Data) != "b-140" {
		t.Fatalf("Peek after 149: %v, %+v", err, es)
	}
	if st := q.Stats(); st.Backlog != 304 || st.FirstSeq != 4 {
		t.Fatalf("stats %+v", st)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	entries, marks := countKeys(t, dir, "s")
	if entries != 4 || marks != 2 {
		t.Errorf("store holds %d entry keys and %d ack marks; want 4 segments, 2 marks", entries, marks)
	}

	db, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	q, err = db.Stream("s", StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if seqs, _ := peekAll(t, q); !slices.Equal(seqs, want) {
		t.Fatalf("after reopen Peek gives %d seqs %v…; want %d", len(seqs), seqs[:min(10, len(seqs))], len(want))
	}
	if st := q.Stats(); st.Backlog != 304 || st.FirstSeq != 4 || st.LastSeq != 310 {
		t.Fatalf("stats after reopen %+v", st)
	}
	// Ack the rest of the first segment: its key and mark go.
	if err := q.Ack(4, 6, 7, 8, 10); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	entries, marks = countKeys(t, dir, "s")
	if entries != 3 || marks != 1 {
		t.Errorf("store holds %d entry keys and %d ack marks; want 3 segments, 1 mark", entries, marks)
	}
}

// A quota drop that takes the front of a segment rewrites its rest, so a
// reopen does not bring the dropped records back.
func TestSegmentDropCutsFront(t *testing.T) {
	dir := t.TempDir()
	gap := func(from, to uint64, reason string) ([]byte, error) {
		return fmt.Appendf(nil, "gap %d-%d %s", from, to, reason), nil
	}
	open := func() (*DB, *Queue) {
		db, err := Open(Options{Dir: dir, DropOrder: []string{"s"}})
		if err != nil {
			t.Fatal(err)
		}
		q, err := db.Stream("s", StreamOptions{Quota: 64 << 10, Gap: gap})
		if err != nil {
			t.Fatal(err)
		}
		return db, q
	}
	db, q := open()
	ctx := segCtx(t)
	big := make([]byte, 500)
	var recs [][]byte
	for i := range 100 {
		recs = append(recs, fmt.Appendf(slices.Clone(big), "%d", i))
	}
	for {
		if err := q.Append(ctx, recs...); err != nil {
			t.Fatal(err)
		}
		if q.Stats().Dropped > 0 {
			break
		}
	}
	seqs, data := peekAll(t, q)
	st := q.Stats()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, q = open()
	defer db.Close()
	seqs2, data2 := peekAll(t, q)
	if !slices.Equal(seqs, seqs2) || !slices.Equal(data, data2) {
		t.Fatalf("reopen delivers %d records %v…, before %d %v…", len(seqs2), seqs2[:min(5, len(seqs2))], len(seqs), seqs[:min(5, len(seqs))])
	}
	// Bytes is exact while open, within a few bytes per value-log entry after a reopen.
	if st2 := q.Stats(); st2.Backlog != st.Backlog || st2.Bytes < st.Bytes-16 || st2.Bytes > st.Bytes+16 || st.Bytes > 64<<10 {
		t.Fatalf("stats before reopen %+v, after %+v", st, st2)
	}
	last := data[len(data)-1]
	if want := fmt.Sprintf("gap 1-%d quota", seqs[0]-1); seqs[0] == 1 || last != want {
		t.Fatalf("first record %d, last %.20q: want a gap record %q", seqs[0], last, want)
	}
	if (seqs[0]-1)%100 == 0 {
		t.Fatalf("the drop took whole segments (first kept %d): the test wants a cut", seqs[0])
	}
}

// A store written before segments (one key per record, holes left by
// out-of-order acks) opens and delivers its backlog; new appends go on
// from its last seq.
func TestUpgradeFromKeyPerRecord(t *testing.T) {
	dir := t.TempDir()
	// The layout before segments, written by hand: "e/" + stream + "/" +
	// seq (8 bytes BE) → the record; "m/" + stream → version 1, last seq.
	bdb, err := openBadger(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(txn *badger.Txn) error {
		for seq := uint64(1); seq <= 1000; seq++ {
			if seq <= 100 || seq%7 == 0 {
				continue // acked
			}
			k := binary.BigEndian.AppendUint64([]byte("e/telemetry/"), seq)
			if err := txn.Set(k, fmt.Appendf(nil, "old-%d", seq)); err != nil {
				return err
			}
		}
		m := binary.BigEndian.AppendUint64([]byte{1}, 1003) // 1001..1003 acked
		return txn.Set([]byte("m/telemetry"), m)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	q, err := db.Stream("telemetry", StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for seq := uint64(101); seq <= 1000; seq++ {
		if seq%7 != 0 {
			want = append(want, seq)
		}
	}
	seqs, data := peekAll(t, q)
	if !slices.Equal(seqs, want) || data[0] != "old-101" || data[len(data)-1] != "old-1000" {
		t.Fatalf("old backlog: %d seqs %v…", len(seqs), seqs[:min(5, len(seqs))])
	}
	if st := q.Stats(); st.Backlog != int64(len(want)) || st.FirstSeq != 101 || st.LastSeq != 1003 {
		t.Fatalf("stats %+v", st)
	}
	ctx := segCtx(t)
	if err := q.Append(ctx, payloads("new", 5)...); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(want[:len(want)/2]...); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(1005); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err = db.Stream("telemetry", StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want = append(slices.Clone(want[len(want)/2:]), 1004, 1006, 1007, 1008)
	seqs, data = peekAll(t, q)
	if !slices.Equal(seqs, want) || data[len(data)-4] != "new-0" || data[len(data)-1] != "new-4" {
		t.Fatalf("after upgrade, appends and acks: %d seqs …%v; want %d …%v", len(seqs), seqs[max(0, len(seqs)-5):], len(want), want[len(want)-5:])
	}
}
