package badgerq

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// A commit error from Badger reaches every caller of that transaction,
// advances no counter and crashes nothing; Close still returns.
func TestCommitErrorReachesEveryCaller(t *testing.T) {
	db, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	q, err := db.Stream("s", StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	gate, err := db.Stream("gate", StreamOptions{Seal: func(seq uint64, p, st []byte) ([]byte, []byte, error) {
		close(entered)
		<-release
		return nil, nil, errors.New("gate released")
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := q.Append(ctx, []byte("before")); err != nil {
		t.Fatal(err)
	}
	// Hold the committer inside a Seal while 16 callers queue up, so that
	// they all land in the next transaction.
	gateErr := make(chan error, 1)
	go func() { gateErr <- gate.Append(ctx, []byte("block")) }()
	<-entered
	const callers = 16
	var wg sync.WaitGroup
	errs := make([]error, callers)
	for i := range errs {
		wg.Go(func() { errs[i] = q.Append(ctx, []byte("a"), []byte("b")) })
	}
	for {
		db.mu.Lock()
		n := len(db.pending)
		db.mu.Unlock()
		if n == callers {
			break
		}
		time.Sleep(time.Millisecond)
	}
	// Make Badger refuse the commit (ErrBlockedWrites). Badger stops its
	// watermark goroutines on Close, so only this first failed commit
	// returns; a later NewTransaction would block forever. That is also why
	// DB.Close stops the committer before closing Badger.
	if err := db.bdb.Close(); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-gateErr; !errors.Is(err, ErrSeal) {
		t.Fatalf("gate Append = %v, want ErrSeal", err)
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrCommit) || err.Error() != errs[0].Error() {
			t.Errorf("caller %d: %v, want the one ErrCommit of the shared transaction", i, err)
		}
	}
	t.Logf("every caller got: %v", errs[0])
	if s := q.Stats(); s.LastSeq != 1 || s.Backlog != 1 {
		t.Errorf("Stats after the failed commit = %+v, want LastSeq 1, Backlog 1", s)
	}
	done := make(chan error, 1)
	go func() { done <- db.Close() }()
	select {
	case err := <-done:
		t.Logf("Close after Badger was closed underneath: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("Close hung")
	}
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(encodeMeta(0, nil))
	f.Add(encodeMeta(42, []byte("state")))
	f.Add(encodeMeta(1<<63, bytes.Repeat([]byte{0xff}, 32)))
	f.Add([]byte{})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		last, state, err := decodeMeta(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if got := encodeMeta(last, state); !bytes.Equal(got, b) {
			t.Fatalf("round trip: %x → (%d, %x) → %x", b, last, state, got)
		}
	})
}

func FuzzParseEntryKey(f *testing.F) {
	p := entryPrefix("telemetry")
	f.Add(entryKey(nil, p, 1))
	f.Add(entryKey(nil, p, 1<<64-1))
	f.Add(entryKey(nil, p, 0))
	f.Add(entryKey(nil, entryPrefix("tele"), 7))
	f.Add(segKey(nil, p, 5, 2))
	f.Add(segKey(nil, p, 5, maxSegRecords))
	f.Add(segKey(nil, p, 5, maxSegRecords+1))
	f.Add(segKey(nil, p, 1<<64-1, 2))
	f.Add([]byte("e/telemetry/"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, key []byte) {
		seq, n, err := parseSegKey(p, key)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if seq == 0 || n < 1 || n > maxSegRecords || !bytes.Equal(segKey(nil, p, seq, n), key) {
			t.Fatalf("parse %x = %d+%d does not round-trip", key, seq, n)
		}
	})
}

func FuzzDecodeSeg(f *testing.F) {
	f.Add(encodeSeg(nil, [][]byte{[]byte("a"), []byte("bc")}), 2)
	f.Add(encodeSeg(nil, [][]byte{{}, []byte("xyz"), {}}), 3)
	f.Add(encodeSeg(nil, [][]byte{[]byte("a"), []byte("bc")}), 3)
	f.Add([]byte{0, 2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, 2)
	f.Add([]byte{}, 2)
	f.Fuzz(func(t *testing.T, v []byte, count int) {
		if count < 2 || count > maxSegRecords {
			return // parseSegKey bounds the count before a value is decoded
		}
		offs, err := decodeSeg(v, count, nil)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if len(offs) != count+1 {
			t.Fatalf("%d offsets for %d records", len(offs), count)
		}
		recs := make([][]byte, count)
		for i := range recs {
			recs[i] = v[offs[i]:offs[i+1]]
		}
		if got := encodeSeg(nil, recs); !bytes.Equal(got, v) {
			t.Fatalf("decode %x → %q does not round-trip: %x", v, recs, got)
		}
	})
}

func FuzzStreamName(f *testing.F) {
	for _, s := range []string{"telemetry", "cmd-result", "", "a/b", "é", "x.y_z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if err := validName(name); err != nil {
			if !errors.Is(err, ErrStreamName) {
				t.Fatalf("error %v does not wrap ErrStreamName", err)
			}
			return
		}
		// A valid name's prefix is never a prefix of another valid name's.
		if bytes.Contains([]byte(name), []byte("/")) || len(name) == 0 || len(name) > maxNameLen {
			t.Fatalf("accepted %q", name)
		}
	})
}

// Marks stay bounded: past maxMarks every other one goes, the oldest stays.
func TestMarksStayBounded(t *testing.T) {
	q := &Queue{}
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 5000 {
		q.markLocked(uint64(i+1), t0.Add(time.Duration(i)*time.Second))
		q.markLocked(uint64(i+1), t0.Add(time.Duration(i)*time.Second+time.Millisecond)) // within markGap: no mark
	}
	if n := len(q.marks); n > maxMarks || n < maxMarks/2 {
		t.Fatalf("%d marks after 5000 s of appends, want %d..%d", n, maxMarks/2, maxMarks)
	}
	if q.marks[0].seq != 1 || q.marks[0].at != uint64(t0.UnixNano()) {
		t.Fatalf("first mark = %+v, want seq 1 at t0", q.marks[0])
	}
	for i := 1; i < len(q.marks); i++ {
		if q.marks[i].seq <= q.marks[i-1].seq {
			t.Fatalf("marks out of order at %d: %+v", i, q.marks[i-1:i+1])
		}
	}
}

func TestBoundQuota32(t *testing.T) {
	for _, c := range []struct {
		quota   int64
		intSize int
		want    int64
	}{
		{0, 64, 0}, {5 << 30, 64, 5 << 30},
		{0, 32, MaxStore32}, {5 << 30, 32, MaxStore32}, {100 << 20, 32, 100 << 20},
	} {
		if got := boundQuota(c.quota, c.intSize); got != c.want {
			t.Errorf("boundQuota(%d, %d) = %d, want %d", c.quota, c.intSize, got, c.want)
		}
	}
}

// An Append the plan refuses (here its second payload fails to seal)
// leaves the transaction's tentative state as it was: the next Append
// takes the seq the refused one would have had, and a change undone on a
// stream the plan had not touched takes the stream out of the plan.
func TestRefusedAppendLeavesThePlan(t *testing.T) {
	db, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	seal := func(seq uint64, p, st []byte) ([]byte, []byte, error) {
		if string(p) == "bad" {
			return nil, nil, errors.New("refused")
		}
		return p, append(bytes.Clone(st), byte(seq)), nil
	}
	q, err := db.Stream("s", StreamOptions{Seal: seal})
	if err != nil {
		t.Fatal(err)
	}
	other, err := db.Stream("o", StreamOptions{Seal: seal})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := q.Append(ctx, []byte("first")); err != nil {
		t.Fatal(err)
	}
	req := func(q *Queue, data ...string) *appendReq {
		r := &appendReq{ctx: ctx, q: q}
		for _, d := range data {
			r.data = append(r.data, []byte(d))
		}
		return r
	}
	p := db.newPlan(false)
	defer p.unlock()
	c, err := p.admit(req(q, "a", "b"))
	if err != nil || c.n != 2 || len(c.kvs) != 0 {
		t.Fatalf("admit: %v, %d records, %d key/values", err, c.n, len(c.kvs))
	}
	if _, err := p.admit(req(q, "c", "bad")); !errors.Is(err, ErrSeal) {
		t.Fatalf("admit of a payload that fails to seal: %v, want ErrSeal", err)
	}
	if len(p.tents) != 1 {
		t.Fatalf("plan touches %d streams, want 1", len(p.tents))
	}
	if tq := p.tentOf(q); tq.last != 3 || tq.n != 2 || len(tq.sizes) != 2 || string(tq.state) != "\x01\x02\x03" {
		t.Fatalf("after the refused append: last %d, n %d, %d sizes, state %x; want 3, 2, 2, 010203", tq.last, tq.n, len(tq.sizes), tq.state)
	}
	c, err = p.admit(req(q, "d"))
	if tq := p.tentOf(q); err != nil || c.n != 1 || tq.last != 4 || len(tq.vals) != 3 || string(tq.vals[2]) != "d" {
		t.Fatalf("next admit: %v, %d records; want seq 4", err, c.n)
	}
	c, err = p.admit(req(other, "e"))
	if err != nil || len(p.tents) != 2 {
		t.Fatalf("admit on a second stream: %v, %d streams", err, len(p.tents))
	}
	c.undo()
	if len(p.tents) != 1 || p.tentOf(other) != nil || p.tentOf(q).last != 4 {
		t.Fatalf("undo on the second stream left %d streams in the plan", len(p.tents))
	}
}

func FuzzParseAckKey(f *testing.F) {
	p := ackPrefix("telemetry")
	f.Add(binary.BigEndian.AppendUint64(slices.Clone(p), 1))
	f.Add(binary.BigEndian.AppendUint64(slices.Clone(p), 0))
	f.Add(binary.BigEndian.AppendUint64(ackPrefix("tele"), 9))
	f.Add(segKey(nil, entryPrefix("telemetry"), 5, 2))
	f.Add([]byte("a/telemetry/"))
	f.Fuzz(func(t *testing.T, key []byte) {
		last, err := parseAckKey(p, key)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if last == 0 || !bytes.Equal(binary.BigEndian.AppendUint64(slices.Clone(p), last), key) {
			t.Fatalf("parse %x = %d does not round-trip", key, last)
		}
	})
}
