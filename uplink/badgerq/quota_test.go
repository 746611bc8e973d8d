package badgerq_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/badgerq"
	"github.com/townlink/townlink/uplink/wire"
)

// The four record streams, wired as the gateway wires them: wire.Seal,
// and gap records built by wire.GapRecord + wire.EncodeRecord.
var recordStreams = []string{wire.StreamTelemetry, wire.StreamEvents, wire.StreamAlarms, wire.StreamEvidence}

func sealFor(stream string) func(seq uint64, payload, state []byte) ([]byte, []byte, error) {
	return func(seq uint64, payload, state []byte) ([]byte, []byte, error) {
		out, hash, err := wire.Seal(stream, payload, seq, state)
		if err != nil {
			return nil, nil, err
		}
		if stream != wire.StreamEvidence {
			return out, state, nil
		}
		return out, hash, nil
	}
}

func gapFor(gw string) func(from, to uint64, reason string) ([]byte, error) {
	return func(from, to uint64, reason string) ([]byte, error) {
		r := wire.GapRecord(gw, from, to, reason, 1_700_000_000_000)
		return wire.EncodeRecord(&r)
	}
}

func streamOpts(stream string, quota int64) badgerq.StreamOptions {
	return badgerq.StreamOptions{Seal: sealFor(stream), Gap: gapFor("gw-test"), Quota: quota}
}

// rec is a ~200-byte encoded record of the stream, numbered i.
func rec(t testing.TB, stream string, i int) []byte {
	b, err := encodeRec(stream, i)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func encodeRec(stream string, i int) ([]byte, error) {
	r := wire.Record{Dev: "m-1", Kind: wire.KindPower, TS: 1_700_000_000_000 + int64(i), TSrc: wire.TSrcDevice,
		Vals: map[string]wire.Value{"energy_kwh": wire.Dec(int64(i), -2), "note": wire.Text(strings.Repeat("x", 120))}}
	if stream == wire.StreamEvidence {
		r.Kind = wire.KindRecorder
		r.Vals = map[string]wire.Value{"file_id": wire.Text(fmt.Sprintf("f-%06d", i)), "note": wire.Text(strings.Repeat("y", 120))}
	}
	return wire.EncodeRecord(&r)
}

func recs(t testing.TB, stream string, from, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = rec(t, stream, from+i)
	}
	return out
}

type quotaDB struct {
	db *badgerq.DB
	q  map[string]*badgerq.Queue
}

func openQuotaDB(t testing.TB, dir string, o badgerq.Options, quotas map[string]int64) *quotaDB {
	t.Helper()
	o.Dir = dir
	db, err := badgerq.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	d := &quotaDB{db: db, q: map[string]*badgerq.Queue{}}
	for _, s := range recordStreams {
		q, err := db.Stream(s, streamOpts(s, quotas[s]))
		if err != nil {
			t.Fatal(err)
		}
		d.q[s] = q
	}
	return d
}

// content is what a stream holds: its entries, decoded.
type content struct {
	last    uint64
	present map[uint64]*wire.Record
	gaps    map[uint64]wire.Range // gap record seq → covered range
}

// readStream reads every entry of q with Peek (which marks them handed out).
func readStream(t testing.TB, q *badgerq.Queue) content {
	t.Helper()
	c := content{last: q.Stats().LastSeq, present: map[uint64]*wire.Record{}, gaps: map[uint64]wire.Range{}}
	var after uint64
	for after < c.last {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		es, err := q.Peek(ctx, after, 10000)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			r, err := wire.DecodeRecord(e.Data)
			if err != nil {
				t.Fatalf("%s seq %d: %v", q.Name(), e.Seq, err)
			}
			if r.Seq != e.Seq {
				t.Fatalf("%s: entry %d carries seq %d", q.Name(), e.Seq, r.Seq)
			}
			c.present[e.Seq] = r
			if from, to, ok := wire.GapRange(r); ok {
				c.gaps[e.Seq] = wire.Range{From: from, To: to}
			}
			after = e.Seq
		}
	}
	return c
}

// checkCoverage asserts the contract's "no silent loss" over one stream:
// every seq 1..last is present, acked, or covered by exactly one gap
// record (stored or acked), and no present record is covered. extraGaps are
// gap records that were acked (delivered). It returns the covered seqs.
func checkCoverage(t testing.TB, name string, c content, acked map[uint64]bool, extraGaps map[uint64]wire.Range) int {
	t.Helper()
	gaps := map[uint64]wire.Range{}
	for s, r := range c.gaps {
		gaps[s] = r
	}
	for s, r := range extraGaps {
		gaps[s] = r
	}
	cover := map[uint64]int{}
	for gs, r := range gaps {
		if r.To >= gs {
			t.Errorf("%s: gap record %d covers %v, which does not end before it", name, gs, r)
		}
		for s := r.From; s <= r.To; s++ {
			cover[s]++
		}
	}
	bad := 0
	for s := uint64(1); s <= c.last; s++ {
		_, p := c.present[s]
		n := cover[s]
		switch {
		case n > 1:
			t.Errorf("%s: seq %d covered by %d gap records", name, s, n)
			bad++
		case p && n == 1 && !acked[s]:
			t.Errorf("%s: seq %d is stored and covered by a gap record", name, s)
			bad++
		case !p && n == 0 && !acked[s]:
			t.Errorf("%s: seq %d is neither stored, acked nor covered by a gap record (silent loss)", name, s)
			bad++
		}
		if bad > 10 {
			t.Fatalf("%s: too many errors", name)
		}
	}
	return len(cover)
}

// A stream over its own quota discards its oldest records, covers them with
// one gap record that grows while nobody has read it, and never exceeds the
// quota.
func TestStreamQuotaDropsOldest(t *testing.T) {
	const quota = 20 << 10
	d := openQuotaDB(t, t.TempDir(), badgerq.Options{}, map[string]int64{wire.StreamTelemetry: quota})
	defer d.db.Close()
	tel := d.q[wire.StreamTelemetry]
	ctx := ctxT(t)
	for i := 0; i < 1000; i += 10 {
		if err := tel.Append(ctx, recs(t, wire.StreamTelemetry, i, 10)...); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if b := tel.Stats().Bytes; b > quota {
			t.Fatalf("after append %d: %d bytes stored, quota %d", i, b, quota)
		}
	}
	st := tel.Stats()
	c := readStream(t, tel)
	covered := checkCoverage(t, "telemetry", c, nil, nil)
	if len(c.gaps) != 1 {
		t.Errorf("%d gap records %v, want 1 (drops merge while the gap record was not read)", len(c.gaps), c.gaps)
	}
	// The kept records are the newest: every present data record's seq is
	// above every covered one.
	var minPresent uint64 = 1 << 63
	for s, r := range c.present {
		if r.Kind != wire.KindGap {
			minPresent = min(minPresent, s)
		}
	}
	for _, g := range c.gaps {
		if g.To >= minPresent {
			t.Errorf("gap %v reaches kept record %d: not the oldest dropped", g, minPresent)
		}
		if g.From != 1 {
			t.Errorf("gap %v does not start at 1", g)
		}
	}
	drops := d.db.Dropped()
	if st.Dropped == 0 || uint64(st.Dropped) != drops[badgerq.ReasonQuota] || drops[badgerq.ReasonDiskFull] != 0 {
		t.Errorf("Stats.Dropped %d, DB.Dropped %v", st.Dropped, drops)
	}
	// Covered: the dropped records and the gap records absorbed by later ones.
	if absorbed := int(st.LastSeq) - 1000 - len(c.gaps); covered != int(st.Dropped)+absorbed {
		t.Errorf("%d seqs covered, want Dropped %d + %d absorbed gap records", covered, st.Dropped, absorbed)
	}
	if n := int64(len(c.present)); n != st.Backlog {
		t.Errorf("%d entries stored, Stats.Backlog %d", n, st.Backlog)
	}
	if st.LastSeq < 1000 || int64(st.LastSeq)-1000 > 50 {
		t.Errorf("LastSeq %d: want 1000 records plus a few gap records", st.LastSeq)
	}
	t.Logf("1000 records of ~200 bytes into a %d-byte quota: %d kept, %d dropped, gap records %v, %d bytes", quota, st.Backlog, st.Dropped, c.gaps, st.Bytes)
	for _, s := range []string{wire.StreamEvents, wire.StreamAlarms, wire.StreamEvidence} {
		if s := d.q[s].Stats(); s.LastSeq != 0 {
			t.Errorf("another stream got entries: %+v", s)
		}
	}
}

// A gap record that Peek has handed out is never rewritten or dropped: the
// next drop writes a new one, and each seq is still covered exactly once.
func TestQuotaKeepsHandedOutGapRecords(t *testing.T) {
	const quota = 8 << 10
	d := openQuotaDB(t, t.TempDir(), badgerq.Options{}, map[string]int64{wire.StreamEvents: quota})
	defer d.db.Close()
	ev := d.q[wire.StreamEvents]
	ctx := ctxT(t)
	handedOut := map[uint64][]byte{}
	for i := 0; i < 600; i += 5 {
		if err := ev.Append(ctx, recs(t, wire.StreamEvents, i, 5)...); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			// A forwarder reads everything now there (and does not ack).
			es, err := ev.Peek(ctx, 0, 10000)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				if r, err := wire.DecodeRecord(e.Data); err == nil && r.Kind == wire.KindGap {
					handedOut[e.Seq] = e.Data
				}
			}
		}
	}
	c := readStream(t, ev)
	checkCoverage(t, "events", c, nil, nil)
	if len(handedOut) == 0 || len(c.gaps) < 2 {
		t.Fatalf("handed out %d gap records, %d stored: the test did not exercise kept gap records", len(handedOut), len(c.gaps))
	}
	// Every handed-out gap record is still there, byte for byte.
	es, err := ev.Peek(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	byseq := map[uint64][]byte{}
	for _, e := range es {
		byseq[e.Seq] = e.Data
	}
	for s, b := range handedOut {
		if got, ok := byseq[s]; !ok || !slices.Equal(got, b) {
			t.Errorf("handed-out gap record %d changed or vanished", s)
		}
	}
	t.Logf("gap records: %v", c.gaps)
}

// The database quota discards telemetry first, then events, never alarms
// or evidence; with nothing droppable left an Append fails with ErrQuota
// and stores nothing. The evidence chain stays intact.
func TestDBQuotaPriority(t *testing.T) {
	const quota = 64 << 10
	d := openQuotaDB(t, t.TempDir(), badgerq.Options{Quota: quota}, nil)
	defer d.db.Close()
	ctx := ctxT(t)
	total := func() int64 {
		var n int64
		for _, q := range d.q {
			n += q.Stats().Bytes
		}
		return n
	}
	// 40 records per stream: ~32 KB in all.
	for _, s := range recordStreams {
		if err := d.q[s].Append(ctx, recs(t, s, 0, 40)...); err != nil {
			t.Fatal(err)
		}
	}
	// Alarms and evidence grow: telemetry goes first, entirely, before any event.
	n := 40
	for d.q[wire.StreamTelemetry].Stats().Dropped < 40 {
		for _, s := range []string{wire.StreamAlarms, wire.StreamEvidence} {
			if err := d.q[s].Append(ctx, rec(t, s, n)); err != nil {
				t.Fatalf("append %s %d: %v", s, n, err)
			}
		}
		n++
		if total() > quota {
			t.Fatalf("%d bytes stored, quota %d", total(), quota)
		}
		if d.q[wire.StreamEvents].Stats().Dropped > 0 {
			t.Fatalf("events dropped while telemetry still had %d records", 40-d.q[wire.StreamTelemetry].Stats().Dropped)
		}
		if n > 1000 {
			t.Fatal("telemetry never dropped")
		}
	}
	// Then events, to the last record.
	var err error
	for err == nil {
		for _, s := range []string{wire.StreamAlarms, wire.StreamEvidence} {
			if err = d.q[s].Append(ctx, rec(t, s, n)); err != nil {
				break
			}
		}
		n++
		if total() > quota {
			t.Fatalf("%d bytes stored, quota %d", total(), quota)
		}
		if n > 2000 {
			t.Fatal("never refused")
		}
	}
	if !errors.Is(err, badgerq.ErrQuota) {
		t.Fatalf("Append with nothing droppable left: %v, want ErrQuota", err)
	}
	t.Logf("refused: %v", err)
	if d.q[wire.StreamEvents].Stats().Dropped != 40 {
		t.Errorf("events dropped %d of 40 before the refusal", d.q[wire.StreamEvents].Stats().Dropped)
	}
	// The refused Append stored nothing: a retry is refused again and the
	// stream's last seq does not move.
	al := d.q[wire.StreamAlarms]
	last := al.Stats().LastSeq
	if err := al.Append(ctx, rec(t, wire.StreamAlarms, 9999)); !errors.Is(err, badgerq.ErrQuota) {
		t.Fatalf("second refusal: %v", err)
	}
	if al.Stats().LastSeq != last {
		t.Errorf("a refused Append moved LastSeq %d → %d", last, al.Stats().LastSeq)
	}
	for _, s := range recordStreams {
		c := readStream(t, d.q[s])
		covered := checkCoverage(t, s, c, nil, nil)
		st := d.q[s].Stats()
		switch s {
		case wire.StreamAlarms, wire.StreamEvidence:
			if st.Dropped != 0 || len(c.gaps) != 0 || int(st.LastSeq) != len(c.present) {
				t.Errorf("%s lost records: %+v, %d gap records", s, st, len(c.gaps))
			}
		default:
			if covered < 40 || len(c.gaps) == 0 {
				t.Errorf("%s: %d seqs covered by %v", s, covered, c.gaps)
			}
		}
		if s == wire.StreamEvidence {
			var chain []wire.Record
			for seq := uint64(1); seq <= c.last; seq++ {
				chain = append(chain, *c.present[seq])
			}
			if err := wire.VerifyChain(chain, nil); err != nil {
				t.Errorf("evidence chain: %v", err)
			}
		}
	}
	if got := d.db.Dropped(); got[badgerq.ReasonQuota] != 80 {
		t.Errorf("DB.Dropped = %v, want quota: 80", got)
	}
	// Acks make room again.
	ev := d.q[wire.StreamEvidence]
	if err := ev.Ack(1, 2, 3, 4, 5, 6, 7, 8, 9, 10); err != nil {
		t.Fatal(err)
	}
	if err := al.Append(ctx, rec(t, wire.StreamAlarms, 10000)); err != nil {
		t.Fatalf("append after acks freed room: %v", err)
	}
}

// A stream that is not droppable (alarms) and over its own quota refuses
// the Append: nothing of any stream is dropped for it.
func TestQuotaNotDroppableRefuses(t *testing.T) {
	d := openQuotaDB(t, t.TempDir(), badgerq.Options{}, map[string]int64{wire.StreamAlarms: 4 << 10})
	defer d.db.Close()
	ctx := ctxT(t)
	if err := d.q[wire.StreamTelemetry].Append(ctx, recs(t, wire.StreamTelemetry, 0, 50)...); err != nil {
		t.Fatal(err)
	}
	var err error
	n := 0
	for ; err == nil && n < 1000; n++ {
		err = d.q[wire.StreamAlarms].Append(ctx, rec(t, wire.StreamAlarms, n))
	}
	if !errors.Is(err, badgerq.ErrQuota) {
		t.Fatalf("alarms over quota: %v after %d appends, want ErrQuota", err, n)
	}
	if st := d.q[wire.StreamAlarms].Stats(); st.LastSeq != uint64(n-1) || st.Dropped != 0 || st.Bytes > 4<<10 {
		t.Errorf("alarms after refusal: %+v (%d appended)", st, n-1)
	}
	if st := d.q[wire.StreamTelemetry].Stats(); st.Dropped != 0 || st.Backlog != 50 {
		t.Errorf("telemetry touched for an alarms quota: %+v", st)
	}
}

// A stream in DropOrder without a Gap function is never dropped: a discard
// must always be reported.
func TestQuotaWithoutGapFuncRefuses(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	q, err := db.Stream(wire.StreamTelemetry, badgerq.StreamOptions{Quota: badgerq.MinQuota})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	for n := 0; n < 100; n++ {
		if err = q.Append(ctx, make([]byte, 200)); err != nil {
			break
		}
	}
	if !errors.Is(err, badgerq.ErrQuota) || q.Stats().Dropped != 0 {
		t.Fatalf("Append over quota without Gap: %v, %+v", err, q.Stats())
	}
	if _, err := db.Stream("x", badgerq.StreamOptions{Quota: 100}); !errors.Is(err, badgerq.ErrOptions) {
		t.Errorf("Quota 100: %v, want ErrOptions", err)
	}
	for _, o := range []badgerq.Options{{Dir: "x", Quota: -1}, {Dir: "x", DropOrder: []string{"a/b"}}, {Dir: "x", DropOrder: []string{"a", "a"}}, {Dir: "x", MinFreeBytes: 10, DropFreeBytes: 5}} {
		if err := o.Validate(); !errors.Is(err, badgerq.ErrOptions) {
			t.Errorf("Validate(%+v) = %v, want ErrOptions", o, err)
		}
	}
}

// After a reopen the queue still knows its gap records (Badger user meta)
// and its byte counts, and keeps covering every dropped seq exactly once.
func TestQuotaAcrossReopen(t *testing.T) {
	const quota = 16 << 10
	dir := t.TempDir()
	quotas := map[string]int64{wire.StreamTelemetry: quota}
	d := openQuotaDB(t, dir, badgerq.Options{}, quotas)
	ctx := ctxT(t)
	next := 0
	add := func(n int) {
		t.Helper()
		tel := d.q[wire.StreamTelemetry]
		for range n {
			if err := tel.Append(ctx, rec(t, wire.StreamTelemetry, next)); err != nil {
				t.Fatal(err)
			}
			next++
		}
	}
	add(300)
	// Ack three data records in the middle, out of order.
	acked := map[uint64]bool{}
	es, err := d.q[wire.StreamTelemetry].Peek(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es[len(es)/2:] {
		if r, err := wire.DecodeRecord(e.Data); err != nil || r.Kind == wire.KindGap {
			continue
		}
		if len(acked) < 3 && e.Seq%3 == 0 {
			acked[e.Seq] = true
			if err := d.q[wire.StreamTelemetry].Ack(e.Seq); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := d.q[wire.StreamTelemetry].Stats()
	if err := d.db.Close(); err != nil {
		t.Fatal(err)
	}
	d = openQuotaDB(t, dir, badgerq.Options{}, quotas)
	defer d.db.Close()
	after := d.q[wire.StreamTelemetry].Stats()
	if after.LastSeq != before.LastSeq || after.Backlog != before.Backlog || after.FirstSeq != before.FirstSeq {
		t.Errorf("reopen: %+v, before %+v", after, before)
	}
	if diff := after.Bytes - before.Bytes; diff < -64 || diff > 64 {
		t.Errorf("reopen: %d bytes, before %d", after.Bytes, before.Bytes)
	}
	add(300)
	if b := d.q[wire.StreamTelemetry].Stats().Bytes; b > quota {
		t.Errorf("%d bytes over quota %d after reopen", b, quota)
	}
	c := readStream(t, d.q[wire.StreamTelemetry])
	checkCoverage(t, "telemetry", c, acked, nil)
	t.Logf("gap records after reopen: %v", c.gaps)
}

var _ uplink.Queue = (*badgerq.Queue)(nil)

// Below DropFreeBytes every Append discards as many bytes of the oldest
// droppable records as it adds (reason disk_full): telemetry first, then
// events; alarms and evidence are still stored when nothing is left to
// drop (the hard limit is MinFreeBytes). DropFreeBytes above any real free
// space puts the queue under pressure from the start.
func TestDiskPressureDrops(t *testing.T) {
	d := openQuotaDB(t, t.TempDir(), badgerq.Options{MinFreeBytes: 1, DropFreeBytes: 1 << 62}, nil)
	defer d.db.Close()
	ctx := ctxT(t)
	// Under pressure from the start: telemetry's own appends only replace
	// its oldest records.
	for i := 0; i < 100; i += 10 {
		if err := d.q[wire.StreamTelemetry].Append(ctx, recs(t, wire.StreamTelemetry, i, 10)...); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.q[wire.StreamEvents].Append(ctx, recs(t, wire.StreamEvents, 0, 20)...); err != nil {
		t.Fatal(err)
	}
	tel, ev := d.q[wire.StreamTelemetry].Stats(), d.q[wire.StreamEvents].Stats()
	if tel.Dropped == 0 || ev.Dropped != 0 || ev.Backlog != 20 {
		t.Fatalf("telemetry %+v, events %+v: events should have made telemetry drop", tel, ev)
	}
	// Alarms: telemetry goes, then events, then alarms are stored anyway.
	for i := range 200 {
		if err := d.q[wire.StreamAlarms].Append(ctx, rec(t, wire.StreamAlarms, i)); err != nil {
			t.Fatalf("alarm %d: %v", i, err)
		}
	}
	drops := d.db.Dropped()
	if drops[badgerq.ReasonDiskFull] == 0 || drops[badgerq.ReasonQuota] != 0 {
		t.Errorf("Dropped() = %v", drops)
	}
	for _, s := range recordStreams {
		c := readStream(t, d.q[s])
		checkCoverage(t, s, c, nil, nil)
		for gs := range c.gaps {
			if reason, _ := c.present[gs].Vals["reason"].AsText(); reason != badgerq.ReasonDiskFull {
				t.Errorf("%s gap record %d: reason %q", s, gs, reason)
			}
		}
		switch st := d.q[s].Stats(); s {
		case wire.StreamAlarms:
			if st.Backlog != 200 || st.Dropped != 0 {
				t.Errorf("alarms: %+v", st)
			}
		case wire.StreamEvidence:
		default:
			// Only the (open, unread) gap record is left.
			if st.Backlog != 1 || len(c.gaps) != 1 {
				t.Errorf("%s: %+v with gap records %v, want everything dropped into one gap record", s, st, c.gaps)
			}
		}
	}
}

// Peeks racing with drops: a gap record, once handed out, is never
// rewritten or deleted (Peek and the committer share a per-stream lock),
// so what a reader saw stays true, and coverage stays exactly once. The
// reader acks a gap record the second time it sees it, unchanged, as a
// forwarder would after publishing it.
func TestQuotaConcurrentPeek(t *testing.T) {
	const quota = 8 << 10
	d := openQuotaDB(t, t.TempDir(), badgerq.Options{}, map[string]int64{wire.StreamTelemetry: quota})
	defer d.db.Close()
	tel := d.q[wire.StreamTelemetry]
	ctx, cancel := context.WithCancel(ctxT(t))
	seen := map[uint64][]byte{}
	ackedGaps := map[uint64]wire.Range{}
	done := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			es, err := tel.Peek(ctx, 0, 10000)
			if err != nil {
				if ctx.Err() != nil {
					err = nil
				}
				done <- err
				return
			}
			for _, e := range es {
				r, err := wire.DecodeRecord(e.Data)
				if err != nil {
					done <- err
					return
				}
				from, to, ok := wire.GapRange(r)
				if !ok {
					continue
				}
				old, again := seen[e.Seq]
				if again && !slices.Equal(old, e.Data) {
					done <- fmt.Errorf("gap record %d changed after it was handed out", e.Seq)
					return
				}
				seen[e.Seq] = e.Data
				if again {
					if err := tel.Ack(e.Seq); err != nil {
						done <- err
						return
					}
					ackedGaps[e.Seq] = wire.Range{From: from, To: to}
				}
			}
		}
		done <- nil
	}()
	var refused int
	for i := 0; i < 3000; i += 3 {
		err := tel.Append(ctx, recs(t, wire.StreamTelemetry, i, 3)...)
		if errors.Is(err, badgerq.ErrQuota) {
			refused++ // only handed-out gap records left for a moment
			continue
		}
		if err != nil {
			cancel()
			<-done
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if refused > 100 {
		t.Errorf("%d of 1000 appends refused", refused)
	}
	c := readStream(t, tel)
	acked := map[uint64]bool{}
	for s := range ackedGaps {
		acked[s] = true
	}
	checkCoverage(t, "telemetry", c, acked, ackedGaps)
	for s, b := range seen {
		if acked[s] {
			continue
		}
		if got, ok := c.present[s]; !ok {
			t.Errorf("handed-out gap record %d is gone", s)
		} else if enc, _ := wire.EncodeRecord(got); !slices.Equal(enc, b) {
			t.Errorf("handed-out gap record %d changed", s)
		}
	}
	t.Logf("%d gap records handed out (%d acked) while 3000 records overflowed a %d-byte quota; %d refused", len(seen), len(ackedGaps), quota, refused)
}
