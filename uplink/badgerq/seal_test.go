package badgerq_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/badgerq"
)

// toySeal chains entries like the evidence stream: state is the previous
// hash (empty at first), stored = payload || SHA-256(state || seq || payload).
// A payload "bad" makes it fail.
func toySeal(seq uint64, payload, state []byte) ([]byte, []byte, error) {
	if string(payload) == "bad" {
		return nil, nil, errors.New("refusing payload \"bad\"")
	}
	h := sha256.New()
	h.Write(state)
	h.Write(binary.BigEndian.AppendUint64(nil, seq))
	h.Write(payload)
	sum := h.Sum(nil)
	return append(slices.Clip(payload), sum...), sum, nil
}

// verifyChain checks stored entries (contiguous seqs) against toySeal,
// starting from prev, and returns the payloads and the last hash.
func verifyChain(t *testing.T, es []uplink.Entry, prev []byte) ([]string, []byte) {
	t.Helper()
	var payloads []string
	for _, e := range es {
		if len(e.Data) < sha256.Size {
			t.Fatalf("seq %d: stored %d bytes, shorter than a hash", e.Seq, len(e.Data))
		}
		p, sum := e.Data[:len(e.Data)-sha256.Size], e.Data[len(e.Data)-sha256.Size:]
		_, want, _ := toySeal(e.Seq, p, prev)
		if !bytes.Equal(sum, want) {
			t.Fatalf("seq %d (%q): hash %x does not chain from %x (want %x)", e.Seq, p, sum, prev, want)
		}
		payloads = append(payloads, string(p))
		prev = sum
	}
	return payloads, prev
}

func TestSealChainSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	q, err := db.Stream("evidence", badgerq.StreamOptions{Seal: toySeal})
	if err != nil {
		t.Fatal(err)
	}
	// Concurrent appenders: the seal still runs in seq order.
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				if err := q.Append(ctxT(t), fmt.Appendf(nil, "w%d-%d", w, i), fmt.Appendf(nil, "w%d-%db", w, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	es, err := q.Peek(ctxT(t), 0, 1000)
	if err != nil || len(es) != 400 {
		t.Fatalf("Peek = %d entries, %v; want 400", len(es), err)
	}
	_, head := verifyChain(t, es, nil)

	// A failing seal fails that Append alone and consumes no seq.
	if err := q.Append(ctxT(t), []byte("ok"), []byte("bad")); !errors.Is(err, badgerq.ErrSeal) {
		t.Fatalf("Append with a failing seal = %v, want ErrSeal", err)
	}
	if s := q.Stats(); s.LastSeq != 400 || s.Backlog != 400 || !bytes.Equal(s.Seal, head) {
		t.Fatalf("after a failed seal: Stats = %+v, want LastSeq 400, Backlog 400, Seal = the chain head", s)
	}
	// Ack everything: the chain head must still survive in the meta key.
	seqs := make([]uint64, 0, len(es))
	for _, e := range es {
		seqs = append(seqs, e.Seq)
	}
	if err := q.Ack(seqs...); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openDB(t, dir)
	defer db.Close()
	q, err = db.Stream("evidence", badgerq.StreamOptions{Seal: toySeal})
	if err != nil {
		t.Fatal(err)
	}
	if s := q.Stats(); s.LastSeq != 400 || !bytes.Equal(s.Seal, head) {
		t.Fatalf("after reopen: Stats = %+v, want LastSeq 400 and the chain head kept", s)
	}
	if err := q.Append(ctxT(t), []byte("after-reopen")); err != nil {
		t.Fatal(err)
	}
	es, err = q.Peek(ctxT(t), 0, 10)
	if err != nil || len(es) != 1 || es[0].Seq != 401 {
		t.Fatalf("after reopen: Peek = %v, %v; want seq 401 only", es, err)
	}
	if p, _ := verifyChain(t, es, head); p[0] != "after-reopen" {
		t.Fatalf("payload %q", p[0])
	}
}

func TestStreamsAreIndependent(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	names := []string{"telemetry", "events", "alarms", "cmd-result"}
	qs := make([]*badgerq.Queue, len(names))
	for i, n := range names {
		q, err := db.Stream(n, badgerq.StreamOptions{})
		if err != nil {
			t.Fatal(err)
		}
		qs[i] = q
	}
	if _, err := db.Stream("events", badgerq.StreamOptions{}); !errors.Is(err, badgerq.ErrStreamInUse) {
		t.Fatalf("second Stream(events) = %v, want ErrStreamInUse", err)
	}
	for _, bad := range []string{"", "a/b", "tele metry", string(make([]byte, 65))} {
		if _, err := db.Stream(bad, badgerq.StreamOptions{}); !errors.Is(err, badgerq.ErrStreamName) {
			t.Errorf("Stream(%q) = %v, want ErrStreamName", bad, err)
		}
	}
	// Group commit across streams: concurrent appends to all of them.
	var wg sync.WaitGroup
	for i, q := range qs {
		wg.Go(func() {
			for j := range 100 * (i + 1) {
				if err := q.Append(ctxT(t), fmt.Appendf(nil, "%s-%d", names[i], j)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	check := func(stage string) {
		for i, q := range qs {
			n := 100 * (i + 1)
			es, err := q.Peek(ctxT(t), 0, 10000)
			if err != nil || len(es) != n {
				t.Fatalf("%s: %s: Peek = %d entries, %v; want %d", stage, names[i], len(es), err, n)
			}
			for j, e := range es {
				if want := fmt.Sprintf("%s-%d", names[i], j); e.Seq != uint64(j+1) || string(e.Data) != want {
					t.Fatalf("%s: %s: entry %d = seq %d %q, want seq %d %q", stage, names[i], j, e.Seq, e.Data, j+1, want)
				}
			}
			s := q.Stats()
			if s.Backlog != int64(n) || s.FirstSeq != 1 || s.LastSeq != uint64(n) || s.Bytes <= 0 {
				t.Fatalf("%s: %s: Stats = %+v", stage, names[i], s)
			}
		}
	}
	check("live")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := qs[0].Append(ctxT(t), []byte("x")); !errors.Is(err, uplink.ErrClosed) {
		t.Fatalf("Append after Close = %v, want uplink.ErrClosed", err)
	}
	if err := qs[0].Ack(1); !errors.Is(err, uplink.ErrClosed) {
		t.Fatalf("Ack after Close = %v, want uplink.ErrClosed", err)
	}
	if _, err := qs[0].Peek(ctxT(t), 1000, 1); !errors.Is(err, uplink.ErrClosed) {
		t.Fatalf("Peek after Close = %v, want uplink.ErrClosed", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	db = openDB(t, dir)
	defer db.Close()
	for i, n := range names {
		q, err := db.Stream(n, badgerq.StreamOptions{})
		if err != nil {
			t.Fatal(err)
		}
		qs[i] = q
	}
	check("reopened")
}

func TestStatsAndPeekArgs(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	q, err := db.Stream("s", badgerq.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s := q.Stats(); !reflect.DeepEqual(s, badgerq.Stats{}) {
		t.Fatalf("empty Stats = %+v", s)
	}
	if _, err := q.Peek(ctxT(t), 0, 0); !errors.Is(err, badgerq.ErrArgument) {
		t.Fatalf("Peek n=0 = %v, want ErrArgument", err)
	}
	for i := range 10 {
		if err := q.Append(ctxT(t), bytes.Repeat([]byte{byte(i)}, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if s := q.Stats(); s.Backlog != 10 || s.FirstSeq != 1 || s.LastSeq != 10 || s.Bytes != 1000 {
		t.Fatalf("Stats = %+v, want backlog 10, 1..10, 1000 bytes", s)
	}
	if err := q.Ack(1, 2, 5); err != nil {
		t.Fatal(err)
	}
	if s := q.Stats(); s.Backlog != 7 || s.FirstSeq != 3 || s.LastSeq != 10 || s.Bytes != 700 {
		t.Fatalf("Stats after Ack(1,2,5) = %+v, want backlog 7, first 3, last 10, 700 bytes", s)
	}
	if err := q.Ack(3, 4, 6, 7, 8, 9, 10); err != nil {
		t.Fatal(err)
	}
	if s := q.Stats(); !reflect.DeepEqual(s, badgerq.Stats{LastSeq: 10}) {
		t.Fatalf("Stats after acking all = %+v, want only LastSeq 10", s)
	}
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTooLargeAndBigBatches(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// Value-log GC every 5 ms runs alongside value-log traffic and acks.
	db, err := badgerq.Open(badgerq.Options{Dir: t.TempDir(), MaxBatch: 10, Logger: log, GCInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
		if s := logs.String(); s != "" {
			t.Errorf("warnings or errors logged:\n%s", s)
		}
	}()
	q, err := db.Stream("s", badgerq.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Larger than MaxBatch: commits alone, atomically.
	big := make([][]byte, 500)
	for i := range big {
		big[i] = fmt.Appendf(nil, "%d", i)
	}
	if err := q.Append(ctxT(t), big...); err != nil {
		t.Fatalf("Append of 500 entries with MaxBatch 10: %v", err)
	}
	// Larger than one Badger transaction (8 MB memtable → ~1 MB): refused whole.
	huge := make([][]byte, 3000)
	for i := range huge {
		huge[i] = make([]byte, 900) // inline values (below the 1 KB threshold)
	}
	if err := q.Append(ctxT(t), huge...); !errors.Is(err, badgerq.ErrTooLarge) {
		t.Fatalf("Append of 2.7 MB inline = %v, want ErrTooLarge", err)
	}
	// Big values go to the value log and fit.
	vlog := make([][]byte, 200)
	for i := range vlog {
		vlog[i] = bytes.Repeat([]byte{'v'}, 20_000)
	}
	if err := q.Append(ctxT(t), vlog...); err != nil {
		t.Fatalf("Append of 200 × 20 KB: %v", err)
	}
	if s := q.Stats(); s.LastSeq != 700 || s.Backlog != 700 {
		t.Fatalf("Stats = %+v, want 700 entries (nothing from the refused Append)", s)
	}
	es, err := q.Peek(ctxT(t), 500, 1000)
	if err != nil || len(es) != 200 || es[0].Seq != 501 || len(es[199].Data) != 20_000 {
		t.Fatalf("Peek after 500: %d entries, %v", len(es), err)
	}
	// Churn the value log: append and ack big entries for a while.
	for round := range 20 {
		if err := q.Append(ctxT(t), vlog...); err != nil {
			t.Fatal(err)
		}
		last := q.Stats().LastSeq
		seqs := make([]uint64, 0, 200)
		for s := last - 199; s <= last; s++ {
			seqs = append(seqs, s)
		}
		if err := q.Ack(seqs...); err != nil {
			t.Fatal(err)
		}
		if s := q.Stats(); s.Backlog != 700 || s.LastSeq != 900+200*uint64(round) {
			t.Fatalf("round %d: Stats %+v, want backlog 700", round, s)
		}
	}
	es, err = q.Peek(ctxT(t), 0, 10)
	if err != nil || es[0].Seq != 1 || string(es[0].Data) != "0" {
		t.Fatalf("first entry after churn: %v, %v", es, err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []badgerq.Options{
		{},
		{Dir: "x", MaxBatch: -1},
		{Dir: "x", GCInterval: -1},
		{Dir: "x", Profile: badgerq.Profile{NumCompactors: 1}},
		{Dir: "x", Profile: badgerq.Profile{ValueThreshold: 4 << 20}},
		{Dir: "x", Profile: badgerq.Profile{ValueLogFileSize: 4 << 30}},
		{Dir: "x", Profile: badgerq.Profile{NumLevelZeroTables: 9, NumLevelZeroTablesStall: 3}},
	} {
		if err := o.Validate(); !errors.Is(err, badgerq.ErrOptions) {
			t.Errorf("Validate(%+v) = %v, want ErrOptions", o, err)
		}
		if _, err := badgerq.Open(o); !errors.Is(err, badgerq.ErrOptions) {
			t.Errorf("Open(%+v) = %v, want ErrOptions", o, err)
		}
	}
	if err := (badgerq.Options{Dir: "x", Profile: badgerq.BadgerDefault()}).Validate(); err != nil {
		t.Errorf("BadgerDefault profile: %v", err)
	}
}
