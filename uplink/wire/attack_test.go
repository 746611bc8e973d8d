package wire

import (
	"bytes"
	"errors"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
)

// Attacks on the audit by someone on the network path or a compromised or
// buggy gateway: each builds honest traffic with the package's own
// encoders, tampers with it, and checks what the audit says. See
// TestForged* (forgery_test.go) for the forgeries of someone holding the
// gateway's storage.

// plainStored returns n honest records of stream (not evidence), seqs
// first.., as the queue stores them.
func plainStored(t *testing.T, seed uint64, first uint64, n int) [][]byte {
	t.Helper()
	g := newGen(seed)
	var out [][]byte
	for i := range n {
		r := g.record(first+uint64(i), false)
		out = append(out, mustEncodeRecord(t, &r))
	}
	return out
}

func gapStored(t *testing.T, seq, from, to uint64, reason string) []byte {
	t.Helper()
	r := GapRecord(fgw, from, to, reason, 1767225600000)
	r.Seq = seq
	return mustEncodeRecord(t, &r)
}

func mustPass(t *testing.T, rep Report) {
	t.Helper()
	if !rep.OK() {
		t.Fatalf("honest capture fails:\n%s", rep)
	}
}

// Alarms are never discarded (contract 6): a gap record on alarms that
// says quota or disk_full replaces alarms someone dropped. Only a restore
// (reason "restored") skips alarm seqs.
func TestAttackQuotaGapOnAlarms(t *testing.T) {
	recs := plainStored(t, 1, 1, 4)
	for _, reason := range []string{"quota", "disk_full", "whatever"} {
		forged := append(slices.Clone(recs), gapStored(t, 9, 5, 8, reason))
		rep, errs := audit(frame(fgw, StreamAlarms, forged), nil)
		if len(errs) != 1 || !errors.Is(errs[0], ErrSchema) {
			t.Fatalf("%s: errors %v", reason, errs)
		}
		mustFail(t, rep, "FORGED seq 9: message 2 (records 9) rejected", "alarms are never discarded", "max seq 4")
		a := NewAudit()
		a.Add(&Batch{V: Version, GW: fgw, Stream: StreamAlarms, Recs: decodeStored(t, forged[4:])})
		s := a.Report().Streams[0]
		if len(s.Forged) != 1 || len(s.Covered) != 0 || s.OK() {
			t.Fatalf("%s: Add: %+v", reason, s)
		}
	}
	// The gateway's restore skips alarm seqs with reason "restored".
	restored := append(slices.Clone(recs), gapStored(t, 9, 5, 8, GapReasonRestored))
	rep, errs := audit(frame(fgw, StreamAlarms, restored), nil)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	mustPass(t, rep)
	// On telemetry and events a quota gap is what the gateway sends.
	for _, stream := range []string{StreamTelemetry, StreamEvents} {
		rep, _ := audit(frame(fgw, stream, append(slices.Clone(recs), gapStored(t, 9, 5, 8, "quota"))), nil)
		mustPass(t, rep)
	}
}

// Gap records that overlap each other, or cover seqs that were delivered
// anyway (sent, then discarded before the acknowledgement came), lose
// nothing: the audit passes them, and counts no seq twice.
func TestAttackOverlappingGaps(t *testing.T) {
	recs := plainStored(t, 2, 1, 6)
	stored := append(slices.Clone(recs), gapStored(t, 7, 2, 5, "quota"), gapStored(t, 8, 4, 7, "quota"))
	rep, _ := audit(frame(fgw, StreamTelemetry, stored), nil)
	mustPass(t, rep)
	s := rep.Streams[0]
	if s.Received != 8 || !slices.Equal(s.Covered, []Range{{2, 7}}) || s.MaxSeq != 8 {
		t.Fatalf("%+v", s)
	}
	// But a gap can never vouch for a seq at or above its own, even when
	// another record of the batch is genuine.
	stored = append(slices.Clone(recs[:2]), gapStored(t, 3, 3, 6, "quota"))
	rep, _ = audit(frame(fgw, StreamTelemetry, stored), nil)
	mustFail(t, rep, "FORGED seq 3: message 1 (records 1-3) rejected", "a gap covers only seqs before its own")
}

// A gap record replacing a genuine record at the same seq, in either
// order, is a conflict.
func TestAttackGapReplacesRecord(t *testing.T) {
	recs := plainStored(t, 3, 1, 8)
	gap := gapStored(t, 8, 5, 7, "quota")
	for _, order := range [][][]byte{{gap, recs[7]}, {recs[7], gap}} {
		msgs := frame(fgw, StreamTelemetry, recs[:7])
		for _, p := range order {
			msgs = append(msgs, message{ftopic(fgw, StreamTelemetry), string(AppendBatch(nil, fgw, StreamTelemetry, [][]byte{p}))})
		}
		rep, _ := audit(msgs, nil)
		mustFail(t, rep, "CONFLICTS at seq [8]")
	}
}

// Out of order, duplicated and re-batched deliveries of honest records
// pass; a replay of a seq with any byte of its contents changed is a
// conflict.
func TestAttackReorderAndReplay(t *testing.T) {
	recs := plainStored(t, 4, 1, 12)
	msgs := frame(fgw, StreamTelemetry, recs)
	slices.Reverse(msgs)
	msgs = append(msgs, frame(fgw, StreamTelemetry, recs[3:9])...)
	rep, _ := audit(msgs, nil)
	mustPass(t, rep)
	if s := rep.Streams[0]; s.Duplicates != 6 || s.Received != 12 {
		t.Fatalf("%+v", s)
	}
	r, err := DecodeRecord(recs[5])
	if err != nil {
		t.Fatal(err)
	}
	r.TS++
	msgs = append(msgs, frame(fgw, StreamTelemetry, [][]byte{mustEncodeRecord(t, r)})...)
	rep, _ = audit(msgs, nil)
	mustFail(t, rep, "CONFLICTS at seq [6]")
}

// reencode rewrites an honest record or batch in valid but
// non-deterministic CBOR: every head in its longest form (8-byte
// arguments) and the map keys in reverse order.
func reencode(t *testing.T, p []byte) []byte {
	t.Helper()
	out, end, err := reencodeItem(p, 0)
	if err != nil || end != len(p) {
		t.Fatalf("reencode: %v (end %d of %d)", err, end, len(p))
	}
	return out
}

func reencodeItem(p []byte, off int) ([]byte, int, error) {
	major, arg, n, err := head(p, off)
	if err != nil {
		return nil, 0, err
	}
	long := func(major byte, arg uint64) []byte {
		b := []byte{major<<5 | 27, 0, 0, 0, 0, 0, 0, 0, 0}
		for i := range 8 {
			b[8-i] = byte(arg >> (8 * i))
		}
		return b
	}
	off += n
	switch major {
	case majUint, majNeg:
		return long(major, arg), off, nil
	case majBytes, majText:
		return append(long(major, arg), p[off:off+int(arg)]...), off + int(arg), nil
	case majTag:
		inner, end, err := reencodeItem(p, off)
		return append(long(major, arg), inner...), end, err
	case majArray:
		out := long(major, arg)
		for range arg {
			var item []byte
			if item, off, err = reencodeItem(p, off); err != nil {
				return nil, 0, err
			}
			out = append(out, item...)
		}
		return out, off, nil
	case majMap:
		var pairs [][]byte
		for range arg {
			k, end, err := reencodeItem(p, off)
			if err != nil {
				return nil, 0, err
			}
			v, end2, err := reencodeItem(p, end)
			if err != nil {
				return nil, 0, err
			}
			pairs = append(pairs, append(k, v...))
			off = end2
		}
		slices.Reverse(pairs)
		return append(long(major, arg), bytes.Join(pairs, nil)...), off, nil
	}
	return p[off-n : off], off, nil // floats, bools: kept
}

// The same records in a non-deterministic encoding (longest heads, keys
// out of order) are the same records: duplicates, not conflicts, and the
// evidence hashes and signatures still verify (they are computed over the
// deterministic re-encoding). Indefinite lengths, duplicate keys and tags
// where the contract has none are refused.
func TestAttackNonCanonicalEncodings(t *testing.T) {
	h := newHonest(t)
	msgs := h.messages(t, h.stored)
	for _, m := range msgs {
		if strings.HasSuffix(m.topic, "/status") {
			continue
		}
		msgs = append(msgs, message{m.topic, string(reencode(t, []byte(m.payload)))})
	}
	rep, errs := audit(msgs, verifierOf(h.key))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	mustPass(t, rep)
	ev, _ := rep.Stream(fgw, StreamEvidence)
	if ev.Duplicates != 12 || len(ev.Conflicts) != 0 || !ev.SigChecked {
		t.Fatalf("%+v", ev)
	}
	// Only non-canonical: the whole capture verifies on its own.
	var only []message
	for _, m := range h.messages(t, h.stored) {
		if !strings.HasSuffix(m.topic, "/status") {
			m.payload = string(reencode(t, []byte(m.payload)))
		}
		only = append(only, m)
	}
	rep, _ = audit(only, verifierOf(h.key))
	mustPass(t, rep)

	rec := h.stored[0]
	bad := map[string][]byte{
		// the record map with an indefinite length
		"indefinite": append(append([]byte{0xbf}, rec[1:]...), 0xff),
		// "seq" a second time at the end, with another value
		"duplicate key": append(append([]byte{rec[0] + 1}, rec[1:]...), 0x63, 's', 'e', 'q', 0x05),
	}
	// seq wrapped in a tag (tag 1, epoch time)
	i := bytes.Index(rec, []byte{0x63, 's', 'e', 'q'}) + 4
	bad["tagged seq"] = append(append(append([]byte{}, rec[:i]...), 0xc1), rec[i:]...)
	for name, r := range bad {
		p := AppendBatch(nil, fgw, StreamEvidence, [][]byte{r})
		if _, err := Decode(p); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// The evidence chain against signature tricks: another gateway's key, a
// missing signature, alg "none" or an unknown alg, a chain forked at one
// prev. With the key each fails naming the record.
func TestAttackEvidenceSignatures(t *testing.T) {
	h := newHonest(t)
	key := verifierOf(h.key)
	recs := decodeStored(t, h.stored)
	resign := func(mod func(r *Record)) [][]byte {
		out := slices.Clone(h.stored)
		r := recs[6]
		r.Vals = maps.Clone(r.Vals)
		mod(&r)
		hash, err := ChainHash(&r)
		if err != nil {
			t.Fatal(err)
		}
		r.Hash = hash[:]
		out[6] = mustEncodeRecord(t, &r)
		return out
	}
	other := testKey("other-gateway")
	cases := map[string][][]byte{
		"other key": resign(func(r *Record) { r.Sig = Ed25519Signer(other).mustSign(t, recs[6].Hash) }),
		"no sig":    resign(func(r *Record) { r.Sig, r.Alg = nil, "" }),
		"alg none":  resign(func(r *Record) { r.Alg, r.Sig = "none", []byte{0} }),
		"alg sm2":   resign(func(r *Record) { r.Alg = "sm2" }),
	}
	for name, stored := range cases {
		rep, _ := audit(h.messages(t, stored), key)
		mustFail(t, rep, "CHAIN BROKEN", "(seq 7): signature")
		// Without the key nothing ties a record to the gateway; a chain
		// that still hashes together must say so.
		if rep, _ = audit(h.messages(t, stored), nil); rep.OK() && !strings.Contains(rep.String(), "signatures NOT CHECKED") {
			t.Errorf("%s: unchecked signatures not reported:\n%s", name, rep)
		}
	}
	// A fork: record 8 replaced by another record claiming record 7 as its
	// prev, properly signed with the gateway's key (a buggy gateway that
	// sealed two records on one head), delivered besides the original.
	fork := recs[7]
	fork.Vals = map[string]Value{"file_id": Text("VID-fork")}
	sealed, _ := sealAll(t, []Record{fork}, 8, h.hashes[6], Ed25519Signer(h.key))
	msgs := append(h.messages(t, h.stored), frame(fgw, StreamEvidence, sealed)...)
	rep, _ := audit(msgs, key)
	mustFail(t, rep, "CONFLICTS at seq [8]")
	// The fork at seq 9 instead (both claim record 7 as prev).
	sealed, _ = sealAll(t, []Record{fork}, 9, h.hashes[6], Ed25519Signer(h.key))
	stored := slices.Clone(h.stored)
	stored[8] = sealed[0]
	rep, _ = audit(h.messages(t, stored), key)
	mustFail(t, rep, "CHAIN BROKEN", "(seq 9): prev mismatch")
}

func (k Ed25519Signer) mustSign(t *testing.T, msg []byte) []byte {
	t.Helper()
	s, err := k.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A tail cut off: the status announces the last seq, and its signed head
// pins it. A status replayed from earlier with a later ts (the head
// signature does not cover ts) shows as a rollback, not as a pass.
func TestAttackTailCutAndReplayedStatus(t *testing.T) {
	h := newHonest(t)
	key := verifierOf(h.key)
	old := h.status(t, 1767225650000, 8, h.hashes[7])
	msgs := append(h.messages(t, h.stored[:8]), old)
	rep, _ := audit(msgs, key)
	mustFail(t, rep, "MISSING 9-12")
	// The old status (seq 8) replayed with a ts after the newest status.
	s, err := DecodeStatus([]byte(old.payload))
	if err != nil {
		t.Fatal(err)
	}
	s.TS = 1767225900000
	p, err := EncodeStatus(s)
	if err != nil {
		t.Fatal(err)
	}
	msgs = append(h.messages(t, h.stored[:8]), message{old.topic, string(p)})
	rep, _ = audit(msgs, key)
	mustFail(t, rep, "ROLLBACK seq 8", "MISSING 9-12")
	// A status whose head is signed for another seq than it announces.
	s.LastSeq[StreamEvidence] = 12
	p, _ = EncodeStatus(s)
	rep, _ = audit(append(h.messages(t, h.stored), message{old.topic, string(p)}), key)
	mustFail(t, rep, "FORGED seq 12")
}

// With the gateway's key, a status that announces evidence without a
// signed head cannot vouch for where the chain ends: someone who cut the
// tail would announce less. The audit flags it.
func TestAttackUnsignedEvidenceLastSeq(t *testing.T) {
	h := newHonest(t)
	key := verifierOf(h.key)
	cut := statusMsg(t, h.key, 1767225800000, map[string]uint64{StreamEvidence: 8, StreamTelemetry: 10}, nil)
	msgs := append(frame(fgw, StreamEvidence, h.stored[:8]), h.tel...)
	rep, _ := audit(append(msgs, cut), key)
	mustFail(t, rep, "FORGED seq 8", "not signed")
	// Without a key nothing can be checked: the audit says the signatures
	// were not checked.
	rep, _ = audit(append(msgs, cut), nil)
	if !slices.Equal(rep.SigsUnchecked(), []string{fgw + "/evidence"}) {
		t.Fatalf("%v", rep.SigsUnchecked())
	}
}

// Sequence numbers at the edge: seq 0 and seqs above 2^63-1 (which no gap
// record can cover and no signed 64-bit column holds) are refused; the
// audit's ranges do not wrap around.
func TestAttackExtremeSeqs(t *testing.T) {
	recs := plainStored(t, 7, 1, 3)
	for _, seq := range []uint64{0, MaxSeq + 1, math.MaxUint64} {
		r, err := DecodeRecord(recs[2])
		if err != nil {
			t.Fatal(err)
		}
		r.Seq = seq
		stored := append(slices.Clone(recs[:2]), mustEncodeRecord(t, r))
		rep, errs := audit(frame(fgw, StreamTelemetry, stored), nil)
		if len(errs) != 1 || !errors.Is(errs[0], ErrSchema) {
			t.Fatalf("seq %d: %v", seq, errs)
		}
		mustFail(t, rep, "FORGED")
		a := NewAudit()
		a.Add(&Batch{V: Version, GW: fgw, Stream: StreamTelemetry, Recs: []Record{*r}})
		if s := a.Report().Streams[0]; s.Invalid != 1 || s.Received != 0 || s.OK() {
			t.Fatalf("seq %d: Add: %+v", seq, s)
		}
	}
	// The highest seq, reached by a gap record covering all before it.
	top := plainStored(t, 7, MaxSeq, 1)
	stored := append(slices.Clone(recs), gapStored(t, MaxSeq-1, 4, MaxSeq-2, "quota"), top[0])
	rep, errs := audit(frame(fgw, StreamTelemetry, stored), nil)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	mustPass(t, rep)
	if s := rep.Streams[0]; s.MaxSeq != MaxSeq || s.Received != 5 {
		t.Fatalf("%+v", s)
	}
	// A status cannot announce a seq above MaxSeq either.
	st := &Status{V: Version, GW: fgw, State: StateOnline, TS: 1, Version: "t", Boot: "b", Clock: ClockSynced,
		LastSeq: map[string]uint64{StreamTelemetry: MaxSeq + 1}}
	if _, err := EncodeStatus(st); !errors.Is(err, ErrSchema) {
		t.Fatalf("EncodeStatus: %v", err)
	}
	st.LastSeq[StreamTelemetry] = MaxSeq
	p, err := EncodeStatus(st)
	if err != nil {
		t.Fatal(err)
	}
	p[bytes.Index(p, []byte{0x1b, 0x7f})+1] = 0x80 // last_seq 2^63
	if _, err := DecodeStatus(p); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "above") {
		t.Fatalf("DecodeStatus: %v", err)
	}
	// mergeRanges at the top of uint64 (Add given such ranges directly).
	if got := mergeRanges([]Range{{5, math.MaxUint64}, {7, 9}, {1, 4}}); !slices.Equal(got, []Range{{1, math.MaxUint64}}) {
		t.Fatalf("mergeRanges: %v", got)
	}
}

// A gateway that lost its store starts its seqs at 1 again (the contract
// says they never repeat): the platform must not take the new records for
// duplicates, nor the new status for progress.
func TestAttackWipedStore(t *testing.T) {
	first := plainStored(t, 8, 1, 10)
	msgs := append(frame(fgw, StreamTelemetry, first), statusMsg(t, testKey("gw"), 1767225600000, map[string]uint64{StreamTelemetry: 10}, nil))
	again := plainStored(t, 9, 1, 3)
	msgs = append(msgs, frame(fgw, StreamTelemetry, again)...)
	msgs = append(msgs, statusMsg(t, testKey("gw"), 1767225900000, map[string]uint64{StreamTelemetry: 3}, nil))
	rep, _ := audit(msgs, nil)
	mustFail(t, rep, "CONFLICTS at seq [1 2 3]", "ROLLBACK seq 3")
}
