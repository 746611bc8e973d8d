package wire

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// chunk splits recs into batches of up to n and round-trips each through
// Encode and Decode, as the platform would receive them.
func chunk(t *testing.T, gw, stream string, recs []Record, n int) []*Batch {
	t.Helper()
	var out []*Batch
	for len(recs) > 0 {
		k := min(n, len(recs))
		p, err := Encode(&Batch{V: Version, GW: gw, Stream: stream, Recs: recs[:k]})
		if err != nil {
			t.Fatal(err)
		}
		b, err := Decode(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
		recs = recs[k:]
	}
	return out
}

func TestAudit(t *testing.T) {
	g := newGen(11)
	var tel []Record
	for seq := uint64(1); seq <= 100; seq++ {
		if (seq >= 21 && seq <= 30) || (seq >= 51 && seq <= 55) {
			continue // 21-30 dropped on purpose (gap record below), 51-55 lost
		}
		tel = append(tel, g.record(seq, false))
	}
	gap := GapRecord("gw-1", 21, 30, "quota", 1767225600000)
	gap.Seq = 101
	tel = append(tel, gap)
	batches := chunk(t, "gw-1", StreamTelemetry, tel, 7)
	// A conflicting copy of seq 60 and a duplicate of seq 61.
	var c60, d61 Record
	for _, r := range tel {
		switch r.Seq {
		case 60:
			c60 = cloneRecord(r)
			c60.TS++
		case 61:
			d61 = cloneRecord(r)
		}
	}
	batches = append(batches, chunk(t, "gw-1", StreamTelemetry, []Record{c60, d61}, 10)...)
	// Redeliver three batches (reconnects).
	batches = append(batches, batches[0], batches[3], batches[len(batches)-3])

	ev := sealedChain(t, g, 20)
	batches = append(batches, chunk(t, "gw-1", StreamEvidence, ev, 3)...)
	batches = append(batches, chunk(t, "gw-1", StreamEvidence, ev[5:9], 3)...)

	// gw-2: evidence with record 7 (seq 8) altered after sealing.
	ev2 := sealedChain(t, g, 10)
	ev2[7].Vals["officer"] = Text("someone else")
	batches = append(batches, chunk(t, "gw-2", StreamEvidence, ev2, 4)...)
	var evt []Record
	for seq := uint64(1); seq <= 30; seq++ {
		evt = append(evt, g.record(seq, false))
	}
	batches = append(batches, chunk(t, "gw-2", StreamEvents, evt, 30)...)

	g.r.Shuffle(len(batches), func(i, j int) { batches[i], batches[j] = batches[j], batches[i] })
	a := NewAudit()
	for _, b := range batches {
		a.Add(b)
	}
	rep := a.Report()
	t.Log("\n" + rep.String())

	if len(rep.Streams) != 4 {
		t.Fatalf("%d streams", len(rep.Streams))
	}
	s, ok := rep.Stream("gw-1", StreamTelemetry)
	if !ok {
		t.Fatal("no gw-1/telemetry")
	}
	// Duplicates: seq 61 once more, plus the redelivered batches (7 + 7 + 7 records).
	if s.Received != 86 || s.MaxSeq != 101 || s.Duplicates != 1+21 ||
		!reflect.DeepEqual(s.Conflicts, []uint64{60}) ||
		!reflect.DeepEqual(s.Covered, []Range{{21, 30}}) ||
		!reflect.DeepEqual(s.Missing, []Range{{51, 55}}) || s.OK() {
		t.Fatalf("gw-1/telemetry: %+v", s)
	}
	s, _ = rep.Stream("gw-1", StreamEvidence)
	if s.Received != 20 || s.Duplicates != 4 || !s.ChainOK || s.ChainErr != nil || !s.OK() {
		t.Fatalf("gw-1/evidence: %+v", s)
	}
	s, _ = rep.Stream("gw-2", StreamEvidence)
	var ce *ChainError
	if s.ChainOK || !errors.As(s.ChainErr, &ce) || ce.Seq != 8 || ce.Index != 7 || s.OK() {
		t.Fatalf("gw-2/evidence: %+v", s)
	}
	s, _ = rep.Stream("gw-2", StreamEvents)
	if s.Received != 30 || s.Duplicates != 0 || len(s.Missing) != 0 || !s.OK() {
		t.Fatalf("gw-2/events: %+v", s)
	}
	if rep.OK() {
		t.Fatal("report OK despite loss, conflict and a broken chain")
	}
	for _, want := range []string{"gw-1/telemetry:", "MISSING 51-55 (5)", "covered by gaps 21-30 (10)", "CONFLICTS at seq [60]", "gw-1/evidence:", "chain ok", "CHAIN BROKEN", "index 7 (seq 8)", "gw-2/events: received 30, duplicates 0, max seq 30: OK"} {
		if !strings.Contains(rep.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// TestAuditComplete: everything delivered (out of order, duplicated) or
// covered: OK.
func TestAuditComplete(t *testing.T) {
	g := newGen(12)
	var recs []Record
	for seq := uint64(1); seq <= 40; seq++ {
		if seq > 10 && seq <= 20 {
			continue
		}
		recs = append(recs, g.record(seq, false))
	}
	gap := GapRecord("gw-1", 11, 20, "quota", 1)
	gap.Seq = 41
	recs = append(recs, gap)
	bs := chunk(t, "gw-1", StreamEvents, recs, 4)
	bs = append(bs, bs...)
	g.r.Shuffle(len(bs), func(i, j int) { bs[i], bs[j] = bs[j], bs[i] })
	a := NewAudit()
	for _, b := range bs {
		a.Add(b)
	}
	rep := a.Report()
	if !rep.OK() {
		t.Fatalf("not OK:\n%s", rep)
	}
	s := rep.Streams[0]
	if s.Received != 31 || s.Duplicates != 31 || s.MaxSeq != 41 || len(s.Missing) != 0 {
		t.Fatalf("%+v", s)
	}
	if got := NewAudit().Report().String(); got != "no records\n" {
		t.Fatalf("empty report %q", got)
	}
}
