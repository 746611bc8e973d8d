package wire

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

// TestSetSeqProperty: SetSeq over an EncodeRecord output equals
// EncodeRecord with that seq, for random records and seqs across every
// integer width.
func TestSetSeqProperty(t *testing.T) {
	g := newGen(1)
	seqs := []uint64{0, 1, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<64 - 1}
	for i := range 3000 {
		r := g.record(seqs[g.r.IntN(len(seqs))], i%5 == 0)
		enc := mustEncodeRecord(t, &r)
		r.Seq = seqs[g.r.IntN(len(seqs))]
		if i%3 == 0 {
			r.Seq = g.r.Uint64() >> uint(g.r.IntN(64))
		}
		got, err := SetSeq(enc, r.Seq)
		if err != nil {
			t.Fatal(err)
		}
		if want := mustEncodeRecord(t, &r); !bytes.Equal(got, want) {
			t.Fatalf("record %d seq %d:\n got %x\nwant %x", i, r.Seq, got, want)
		}
	}
}

// TestAppendBatchProperty: AppendBatch over EncodeRecord outputs equals
// Encode, for 1 to 300 records (array heads of 1, 2 and 3 bytes).
func TestAppendBatchProperty(t *testing.T) {
	g := newGen(2)
	for i := range 200 {
		n := 1 + g.r.IntN(30)
		if i%20 == 0 {
			n = 200 + g.r.IntN(100)
		}
		stream := []string{StreamTelemetry, StreamEvents, StreamAlarms, StreamEvidence}[i%4]
		gw := []string{"g", "gw-1", "tl-320583104-01", "a-gateway-id-of-twenty-four-chars"}[i%4]
		b := g.batch(gw, stream, 1+g.r.Uint64N(1<<40), n)
		want, err := Encode(b)
		if err != nil {
			t.Fatal(err)
		}
		recs := make([][]byte, len(b.Recs))
		for j := range b.Recs {
			recs[j] = mustEncodeRecord(t, &b.Recs[j])
		}
		prefix := []byte("keep")
		got := AppendBatch(prefix, gw, stream, recs)
		if !bytes.Equal(got[:4], []byte("keep")) || !bytes.Equal(got[4:], want) {
			t.Fatalf("batch %d (%d records):\n got %x\nwant %x", i, n, got[4:], want)
		}
		if _, err := Decode(got[4:]); err != nil {
			t.Fatalf("batch %d does not decode: %v", i, err)
		}
	}
}

// TestSealProperty: Seal gives what the Record-level definition gives: for
// evidence, Prev set, Hash = ChainHash = SHA-256(EncodeRecord without
// hash), whole output = EncodeRecord; for other streams, SetSeq. Also when
// the input already carries (stale) prev and hash.
func TestSealProperty(t *testing.T) {
	g := newGen(3)
	prev := make([]byte, 32)
	for i := range 2000 {
		stream := []string{StreamTelemetry, StreamEvents, StreamAlarms, StreamEvidence, StreamEvidence}[i%5]
		r := g.record(0, stream == StreamEvidence && i%2 == 0) // some with stale prev/hash
		enc := mustEncodeRecord(t, &r)
		seq := uint64(i + 1)
		out, h, err := Seal(stream, enc, seq, prev)
		if err != nil {
			t.Fatal(err)
		}
		r.Seq = seq
		if stream != StreamEvidence {
			if h != nil {
				t.Fatalf("hash on %s", stream)
			}
			if want := mustEncodeRecord(t, &r); !bytes.Equal(out, want) {
				t.Fatalf("%s record %d:\n got %x\nwant %x", stream, i, out, want)
			}
			continue
		}
		r.Prev, r.Hash, r.Sig, r.Alg = prev, nil, nil, "" // Seal replaces stale chain keys and does not sign
		unhashed := mustEncodeRecord(t, &r)
		sum := sha256.Sum256(unhashed)
		ch, err := ChainHash(&r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(h, sum[:]) || ch != sum {
			t.Fatalf("record %d: hash %x, SHA-256(EncodeRecord without hash) %x, ChainHash %x", i, h, sum, ch)
		}
		r.Hash = sum[:]
		if want := mustEncodeRecord(t, &r); !bytes.Equal(out, want) {
			t.Fatalf("evidence record %d:\n got %x\nwant %x", i, out, want)
		}
		prev = h
	}
}

// TestSealChain: records sealed one after another form a chain that
// VerifyChain accepts and that Decode accepts as an evidence batch.
func TestSealChain(t *testing.T) {
	g := newGen(4)
	var prev []byte // nil: the first record gets 32 zero bytes
	var recs [][]byte
	for i := range 50 {
		r := g.record(0, false)
		out, h, err := Seal(StreamEvidence, mustEncodeRecord(t, &r), uint64(i+1), prev)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, out)
		prev = h
	}
	b, err := Decode(AppendBatch(nil, "gw-1", StreamEvidence, recs))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Recs[0].Prev, make([]byte, 32)) {
		t.Fatalf("first prev %x", b.Recs[0].Prev)
	}
	if err := VerifyChain(b.Recs, nil); err != nil {
		t.Fatal(err)
	}
}

func TestFastPathErrors(t *testing.T) {
	r := Record{Dev: "d", Kind: KindPower, TSrc: TSrcDevice, Vals: map[string]Value{}}
	enc := mustEncodeRecord(t, &r)
	noSeq := rawMap(t, "dev", "d")
	for _, c := range []struct {
		name string
		err  error
	}{
		{"SetSeq of an int", func() error { _, err := SetSeq([]byte{0x01}, 1); return err }()},
		{"SetSeq truncated", func() error { _, err := SetSeq(enc[:5], 1); return err }()},
		{"SetSeq without seq", func() error { _, err := SetSeq(noSeq, 1); return err }()},
		{"SetSeq seq text", func() error { _, err := SetSeq(rawMap(t, "seq", "x"), 1); return err }()},
		{"Seal bad prev", func() error { _, _, err := Seal(StreamEvidence, enc, 1, []byte{1}); return err }()},
		{"Seal bad stream", func() error { _, _, err := Seal(StreamStatus, enc, 1, nil); return err }()},
		{"Seal trailing", func() error {
			_, _, err := Seal(StreamEvidence, append(append([]byte{}, enc...), 0), 1, nil)
			return err
		}()},
		{"Seal unsorted", func() error { _, _, err := Seal(StreamEvidence, rawMap(t, "seq", 1, "dev", "d"), 1, nil); return err }()},
		{"Seal without seq", func() error { _, _, err := Seal(StreamEvidence, noSeq, 1, nil); return err }()},
		{"Seal telemetry without seq", func() error { _, _, err := Seal(StreamTelemetry, noSeq, 1, nil); return err }()},
		{"Seal telemetry seq text", func() error { _, _, err := Seal(StreamTelemetry, rawMap(t, "seq", "x"), 1, nil); return err }()},
		{"Seal telemetry truncated", func() error { _, _, err := Seal(StreamTelemetry, enc[:5], 1, nil); return err }()},
		{"Seal telemetry vals not a map", func() error {
			_, _, err := Seal(StreamTelemetry, rawMap(t, "seq", 1, "vals", 2), 1, nil)
			return err
		}()},
		{"Seal sig on telemetry, last", func() error {
			_, _, err := Seal(StreamTelemetry, rawMap(t, "seq", 1, "sig", []byte{1}), 1, nil)
			return err
		}()},
		{"Seal hash on telemetry", func() error {
			r := r
			r.Hash = make([]byte, 32)
			_, _, err := Seal(StreamTelemetry, mustEncodeRecord(t, &r), 1, nil)
			return err
		}()},
	} {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
		} else if !errors.Is(c.err, ErrMalformed) && !errors.Is(c.err, ErrSchema) {
			t.Errorf("%s: %v wraps no sentinel", c.name, c.err)
		}
	}
}
