package wire

import (
	"crypto/ed25519"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// The forgeries the county must catch from the uplink alone. Each test
// builds an honest, signed capture (messages as they arrive: topic and
// payload), forges it the way someone holding the gateway's SD card but not
// its key could, and checks that the audit fails and names the record.

const fgw = "tl-320583104-01"

func ftopic(gw, stream string) string { return Topic("320583", "320583104", gw, stream) }

type message struct{ topic, payload string }

// testKey returns a deterministic Ed25519 key for name.
func testKey(name string) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, name)
	return ed25519.NewKeyFromSeed(seed)
}

func verifierOf(k ed25519.PrivateKey) Verifier {
	return Ed25519Verifier(k.Public().(ed25519.PublicKey))
}

// evidenceRec is the i-th evidence record of the fixture, unsealed.
func evidenceRec(i int) Record {
	return Record{Dev: "recorder-3", Kind: KindRecorder, TS: 1767225600000 + int64(i)*1000, TSrc: TSrcDevice,
		Vals: map[string]Value{"file_id": Text("VID-" + strconv.Itoa(i)), "size_bytes": Int(1000 + int64(i))}}
}

// sealAll seals recs as evidence seqs first, first+1, … after prev with
// signer (nil: unsigned) and returns the stored bytes and the last hash.
func sealAll(t *testing.T, recs []Record, first uint64, prev []byte, signer Signer) ([][]byte, [][]byte) {
	t.Helper()
	s := NewSealer(StreamEvidence, signer)
	var out, hashes [][]byte
	for i := range recs {
		r := recs[i]
		r.Seq, r.Prev, r.Hash, r.Sig, r.Alg = 0, nil, nil, nil, ""
		stored, h, err := s.Seal(first+uint64(i), mustEncodeRecord(t, &r), prev)
		if err != nil {
			t.Fatal(err)
		}
		out, hashes = append(out, stored), append(hashes, h)
		prev = h
	}
	return out, hashes
}

// frame publishes stored records as batches of 4 on gw's stream.
func frame(gw, stream string, stored [][]byte) []message {
	var msgs []message
	for i := 0; i < len(stored); i += 4 {
		msgs = append(msgs, message{ftopic(gw, stream), string(AppendBatch(nil, gw, stream, stored[i:min(i+4, len(stored))]))})
	}
	return msgs
}

// decodeStored decodes stored evidence records (for forgers to edit).
func decodeStored(t *testing.T, stored [][]byte) []Record {
	t.Helper()
	var recs []Record
	for _, p := range stored {
		r, err := DecodeRecord(p)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, *r)
	}
	return recs
}

// statusMsg is the gateway's status announcing last seqs and, when head is
// given, the signed evidence head.
func statusMsg(t *testing.T, key ed25519.PrivateKey, ts int64, last map[string]uint64, head []byte) message {
	t.Helper()
	s := &Status{V: Version, GW: fgw, State: StateOnline, TS: ts, Version: "test", Boot: "boot-1",
		Backlog: map[string]uint64{}, Dropped: map[string]uint64{}, Devices: map[string]string{}, Clock: ClockSynced,
		LastSeq: last}
	if head != nil {
		if err := SignHead(Ed25519Signer(key), s, last[StreamEvidence], head); err != nil {
			t.Fatal(err)
		}
	}
	p, err := EncodeStatus(s)
	if err != nil {
		t.Fatal(err)
	}
	return message{ftopic(fgw, StreamStatus), string(p)}
}

// honest is a signed capture: 12 evidence records, 10 telemetry records,
// and a status announcing exactly that with the signed evidence head.
type honest struct {
	key    ed25519.PrivateKey
	stored [][]byte // evidence records as stored
	hashes [][]byte
	tel    []message
}

func newHonest(t *testing.T) *honest {
	h := &honest{key: testKey("gateway")}
	var recs []Record
	for i := 1; i <= 12; i++ {
		recs = append(recs, evidenceRec(i))
	}
	h.stored, h.hashes = sealAll(t, recs, 1, nil, Ed25519Signer(h.key))
	g := newGen(5)
	var tel [][]byte
	for seq := uint64(1); seq <= 10; seq++ {
		r := g.record(seq, false)
		tel = append(tel, mustEncodeRecord(t, &r))
	}
	h.tel = frame(fgw, StreamTelemetry, tel)
	return h
}

func (h *honest) status(t *testing.T, ts int64, evSeq uint64, head []byte) message {
	return statusMsg(t, h.key, ts, map[string]uint64{StreamEvidence: evSeq, StreamTelemetry: 10}, head)
}

// messages is the capture with the evidence records given.
func (h *honest) messages(t *testing.T, evidence [][]byte) []message {
	msgs := append(frame(fgw, StreamEvidence, evidence), h.tel...)
	return append(msgs, h.status(t, 1767225700000, 12, h.hashes[11]))
}

// audit runs msgs through an Audit, trusting key when given, and returns
// the report and the errors AddMessage returned.
func audit(msgs []message, key Verifier) (Report, []error) {
	a := NewAudit()
	if key != nil {
		a.TrustKey(fgw, key)
	}
	var errs []error
	for _, m := range msgs {
		if err := a.AddMessage(m.topic, []byte(m.payload)); err != nil {
			errs = append(errs, err)
		}
	}
	return a.Report(), errs
}

// mustFail checks that the report is not OK and that its text holds every
// want (which name the record).
func mustFail(t *testing.T, rep Report, want ...string) {
	t.Helper()
	s := rep.String()
	if rep.OK() {
		t.Fatalf("forged capture verified OK:\n%s", s)
	}
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("report lacks %q:\n%s", w, s)
		}
	}
}

func TestHonestSignedCaptureVerifies(t *testing.T) {
	h := newHonest(t)
	rep, errs := audit(h.messages(t, h.stored), verifierOf(h.key))
	if !rep.OK() || len(errs) != 0 {
		t.Fatalf("honest capture: %v\n%s", errs, rep)
	}
	ev, _ := rep.Stream(fgw, StreamEvidence)
	if !ev.SigChecked || !ev.ChainOK || ev.Received != 12 || ev.Announced != 12 || len(rep.SigsUnchecked()) != 0 {
		t.Fatalf("evidence: %+v", ev)
	}
	if !strings.Contains(rep.String(), "chain ok, signatures verified: OK") {
		t.Fatalf("report:\n%s", rep)
	}
	// Without the key the same capture is OK, but says so.
	rep, _ = audit(h.messages(t, h.stored), nil)
	if !rep.OK() || len(rep.SigsUnchecked()) != 1 || !strings.Contains(rep.String(), "signatures NOT CHECKED") {
		t.Fatalf("unkeyed audit must report unchecked signatures:\n%s", rep)
	}
}

// Evidence records 8-10 replaced by one gap record claiming they were
// discarded (sealed into the chain, as a forger would).
func TestForgedGapOnEvidence(t *testing.T) {
	h := newHonest(t)
	gap := GapRecord(fgw, 8, 10, "quota", 1767225600000)
	forged, _ := sealAll(t, []Record{gap}, 10, h.hashes[6], nil)
	stored := append(append(append([][]byte{}, h.stored[:7]...), forged...), h.stored[10:]...)
	rep, errs := audit(h.messages(t, stored), verifierOf(h.key))
	if len(errs) != 1 || !errors.Is(errs[0], ErrSchema) {
		t.Fatalf("errors %v", errs)
	}
	mustFail(t, rep, "FORGED seq 10: message 2 (records 5-7,10) rejected", "gap record on the evidence stream", "MISSING 5-10")
	// Without the key too: a gap record is never valid on evidence.
	rep, _ = audit(h.messages(t, stored), nil)
	mustFail(t, rep, "FORGED seq 10", "gap record on the evidence stream")

	// The same batch handed to Add directly (not through the decoder).
	a := NewAudit()
	recs := decodeStored(t, stored)
	a.Add(&Batch{V: Version, GW: fgw, Stream: StreamEvidence, Recs: recs})
	ev, _ := a.Report().Stream(fgw, StreamEvidence)
	if len(ev.Forged) != 1 || ev.Forged[0].Seq != 10 || len(ev.Covered) != 0 || ev.OK() {
		t.Fatalf("Add: %+v", ev)
	}
}

// Gap records covering their own seq or seqs not yet written.
func TestForgedGapCoveringFuture(t *testing.T) {
	g := newGen(6)
	var stored [][]byte
	for seq := uint64(1); seq <= 5; seq++ {
		r := g.record(seq, false)
		stored = append(stored, mustEncodeRecord(t, &r))
	}
	own := GapRecord(fgw, 6, 20, "quota", 1) // covers itself and 7-20
	own.Seq = 6
	future := GapRecord(fgw, 50, 60, "quota", 1) // seqs never written
	future.Seq = 7
	for _, c := range []struct {
		gap  Record
		want string
	}{{own, "FORGED seq 6: message 2 (records 5-6) rejected"}, {future, "FORGED seq 7: message 2 (records 5,7) rejected"}} {
		msgs := frame(fgw, StreamTelemetry, append(stored, mustEncodeRecord(t, &c.gap)))
		rep, errs := audit(msgs, nil)
		if len(errs) != 1 {
			t.Fatalf("errors %v", errs)
		}
		mustFail(t, rep, c.want, "a gap covers only seqs before its own")
		a := NewAudit()
		a.Add(&Batch{V: Version, GW: fgw, Stream: StreamTelemetry, Recs: []Record{c.gap}})
		s := a.Report().Streams[0]
		if len(s.Forged) != 1 || s.Forged[0].Seq != c.gap.Seq || len(s.Covered) != 0 || s.OK() {
			t.Fatalf("Add: %+v", s)
		}
	}
	// An honest gap record (before its own seq) is accepted by both.
	ok := GapRecord(fgw, 2, 5, "quota", 1)
	ok.Seq = 6
	if _, err := DecodeTopic(ftopic(fgw, StreamTelemetry), AppendBatch(nil, fgw, StreamTelemetry, [][]byte{mustEncodeRecord(t, &ok)})); err != nil {
		t.Fatal(err)
	}
}

// Record 6 altered and the chain re-sealed from there, without the key:
// unsigned, or signed with the forger's own key.
func TestForgedAlteredAndResealed(t *testing.T) {
	h := newHonest(t)
	recs := decodeStored(t, h.stored)
	recs[5].Vals["size_bytes"] = Int(1)
	for _, forger := range []Signer{nil, Ed25519Signer(testKey("forger"))} {
		resealed, _ := sealAll(t, recs[5:], 6, h.hashes[4], forger)
		stored := append(append([][]byte{}, h.stored[:5]...), resealed...)
		// The forger also fixes the status's head; only its signature
		// cannot be fixed. Here the gateway's own (old) status stays.
		rep, errs := audit(h.messages(t, stored), verifierOf(h.key))
		if len(errs) != 0 {
			t.Fatal(errs)
		}
		mustFail(t, rep, "CHAIN BROKEN", "(seq 6): signature", "FORGED seq 12: status of ts 1767225700000 announces evidence head")
	}
	// Without the key the re-sealed chain hashes together: only the head
	// in the signed status betrays it, and the report says signatures were
	// not checked.
	resealed, _ := sealAll(t, recs[5:], 6, h.hashes[4], nil)
	rep, _ := audit(h.messages(t, append(append([][]byte{}, h.stored[:5]...), resealed...)), nil)
	mustFail(t, rep, "FORGED seq 12", "signatures NOT CHECKED")
}

// Record 5 deleted, the rest renumbered and re-sealed (and the status
// replaced by one announcing 11 with the re-sealed head, signed with the
// forger's key).
func TestForgedDeletedAndRenumbered(t *testing.T) {
	h := newHonest(t)
	recs := decodeStored(t, h.stored)
	forger := testKey("forger")
	resealed, hashes := sealAll(t, recs[5:], 5, h.hashes[3], Ed25519Signer(forger))
	stored := append(append([][]byte{}, h.stored[:4]...), resealed...)
	msgs := append(frame(fgw, StreamEvidence, stored), h.tel...)
	msgs = append(msgs, statusMsg(t, forger, 1767225700000, map[string]uint64{StreamEvidence: 11, StreamTelemetry: 10}, hashes[len(hashes)-1]))
	rep, _ := audit(msgs, verifierOf(h.key))
	mustFail(t, rep, "CHAIN BROKEN", "(seq 5): signature does not verify", "FORGED seq 11: status of ts 1767225700000: evidence head of seq 11 bad signature")
}

// The tail cut off after a status announced a higher last seq; and a
// status announcing less than an earlier one (a store rolled back).
func TestTruncatedTailAndRollback(t *testing.T) {
	h := newHonest(t)
	msgs := h.messages(t, h.stored[:8]) // batches 9-12 never arrive
	rep, _ := audit(msgs, verifierOf(h.key))
	mustFail(t, rep, "status announced last seq 12", "MISSING 9-12 (4)")
	ev, _ := rep.Stream(fgw, StreamEvidence)
	if ev.Announced != 12 || ev.MaxSeq != 8 {
		t.Fatalf("%+v", ev)
	}
	// Telemetry cut too: status says 10, the last batch (9-10) is gone.
	rep, _ = audit(append(h.messages(t, h.stored)[:5], h.status(t, 1767225700000, 12, h.hashes[11])), verifierOf(h.key))
	mustFail(t, rep, "/telemetry: received 8", "MISSING 9-10 (2)")

	// Rollback: a later status (new boot, store restored from an old image)
	// announces seq 8 after one announced 12.
	msgs = append(h.messages(t, h.stored[:8]), h.status(t, 1767225800000, 8, h.hashes[7]))
	rep, _ = audit(msgs, verifierOf(h.key))
	mustFail(t, rep, "ROLLBACK seq 8: status of ts 1767225800000", "announced 12", "MISSING 9-12")
	ev, _ = rep.Stream(fgw, StreamEvidence)
	if len(ev.Rollbacks) != 1 {
		t.Fatalf("%+v", ev)
	}
	// The same statuses in the other order (ts) are just progress.
	msgs = append(h.messages(t, h.stored), h.status(t, 1767225600000, 8, h.hashes[7]))
	if rep, _ = audit(msgs, verifierOf(h.key)); !rep.OK() {
		t.Fatalf("progress reported as rollback:\n%s", rep)
	}
}

// A payload whose gw or stream differs from the topic it arrived on.
func TestForgedIdentity(t *testing.T) {
	h := newHonest(t)
	other := "tl-320583104-02"
	cases := []struct {
		topic string
		want  string
	}{
		{ftopic(other, StreamEvidence), "payload says gateway \"tl-320583104-01\""},
		{ftopic(fgw, StreamAlarms), "payload says stream \"evidence\""},
	}
	for _, c := range cases {
		msgs := h.messages(t, h.stored)
		msgs = append(msgs, message{c.topic, msgs[0].payload})
		rep, errs := audit(msgs, verifierOf(h.key))
		if len(errs) != 1 || !errors.Is(errs[0], ErrIdentity) {
			t.Fatalf("errors %v", errs)
		}
		mustFail(t, rep, "FORGED seq 1: message 8 (records 1-4) rejected", c.want)
		if _, err := DecodeTopic(c.topic, []byte(msgs[0].payload)); !errors.Is(err, ErrIdentity) {
			t.Fatalf("DecodeTopic: %v", err)
		}
	}
	// A status claiming another gateway.
	st := h.status(t, 1, 12, h.hashes[11])
	rep, errs := audit([]message{{ftopic(other, StreamStatus), st.payload}}, nil)
	if len(errs) != 1 || !errors.Is(errs[0], ErrIdentity) || rep.OK() || len(rep.Rejected) != 1 {
		t.Fatalf("status on another gateway's topic: %v\n%s", errs, rep)
	}
	if _, err := DecodeTopic(ftopic(fgw, StreamStatus), []byte(st.payload)); !errors.Is(err, ErrTopic) {
		t.Fatalf("DecodeTopic on status: %v", err)
	}
}

// VerifyChainKey with a key refuses unsigned records, records signed in
// another alg and records signed by another key, naming the first.
func TestVerifyChainKey(t *testing.T) {
	h := newHonest(t)
	recs := decodeStored(t, h.stored)
	key := verifierOf(h.key)
	if err := VerifyChainKey(recs, nil, key); err != nil {
		t.Fatal(err)
	}
	if err := VerifyChainKey(recs[4:], recs[4].Prev, key); err != nil {
		t.Fatal(err)
	}
	unsigned, _ := sealAll(t, recs, 1, nil, nil)
	if err := VerifyChain(decodeStored(t, unsigned), nil); err != nil {
		t.Fatalf("unsigned chain without key: %v", err)
	}
	var ce *ChainError
	if err := VerifyChainKey(decodeStored(t, unsigned), nil, key); !errors.As(err, &ce) || ce.Seq != 1 || !strings.Contains(ce.Reason, "signature missing") {
		t.Fatalf("unsigned chain with key: %v", err)
	}
	if err := VerifyChainKey(recs, nil, verifierOf(testKey("other"))); !errors.As(err, &ce) || ce.Seq != 1 || !strings.Contains(ce.Reason, "does not verify") {
		t.Fatalf("other key: %v", err)
	}
	if err := VerifyChainKey(recs, nil, otherAlg{}); !errors.As(err, &ce) || !strings.Contains(ce.Reason, "alg ed25519, the gateway's key is sm2") {
		t.Fatalf("other alg: %v", err)
	}
	// A signature moved from another record: hashes hold, the signature
	// does not.
	recs[3].Sig = recs[2].Sig
	if err := VerifyChainKey(recs, nil, key); !errors.As(err, &ce) || ce.Seq != 4 {
		t.Fatalf("moved signature: %v", err)
	}
}

type otherAlg struct{}

func (otherAlg) Alg() string             { return "sm2" }
func (otherAlg) Verify(_, _ []byte) bool { return true }

// The Sealer on the other streams: seq only, state passed through, chain
// keys refused; a bad signer is refused.
func TestSealerStreams(t *testing.T) {
	g := newGen(7)
	r := g.record(0, false)
	enc := mustEncodeRecord(t, &r)
	for _, stream := range []string{StreamTelemetry, StreamEvents, StreamAlarms} {
		out, state, err := NewSealer(stream, Ed25519Signer(testKey("k"))).Seal(42, enc, []byte("kept"))
		if err != nil || string(state) != "kept" {
			t.Fatalf("%s: %v %q", stream, err, state)
		}
		want, _ := SetSeq(enc, 42)
		if string(out) != string(want) {
			t.Fatalf("%s: sealed %x, want %x", stream, out, want)
		}
	}
	signed, _ := sealAll(t, []Record{evidenceRec(1)}, 1, nil, Ed25519Signer(testKey("k")))
	if _, _, err := NewSealer(StreamTelemetry, nil).Seal(1, signed[0], nil); !errors.Is(err, ErrSchema) {
		t.Fatalf("chain keys on telemetry: %v", err)
	}
	if _, _, err := NewSealer(StreamEvidence, badSigner{"ED25519!", nil}).Seal(1, enc, nil); !errors.Is(err, ErrKey) {
		t.Fatalf("bad alg: %v", err)
	}
	if _, _, err := NewSealer(StreamEvidence, badSigner{AlgEd25519, make([]byte, 10)}).Seal(1, enc, nil); !errors.Is(err, ErrSchema) {
		t.Fatalf("short signature: %v", err)
	}
	if _, _, err := NewSealer(StreamEvidence, badSigner{AlgEd25519, nil}).Seal(1, enc, nil); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Fatalf("failing signer: %v", err)
	}
}

type badSigner struct {
	alg string
	sig []byte
}

func (b badSigner) Alg() string { return b.alg }
func (b badSigner) Sign([]byte) ([]byte, error) {
	if b.sig == nil {
		return nil, errors.New("no key")
	}
	return b.sig, nil
}
