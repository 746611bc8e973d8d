package wire

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// sealedChain returns n evidence records sealed by Seal, as decoded
// Records.
func sealedChain(t testing.TB, g *gen, n int) []Record {
	t.Helper()
	var prev []byte
	recs := make([]Record, 0, n)
	for i := range n {
		r := g.record(0, false)
		r.Kind = KindRecorder
		out, h, err := Seal(StreamEvidence, mustEncodeRecord(t, &r), uint64(i+1), prev)
		if err != nil {
			t.Fatal(err)
		}
		d, err := DecodeRecord(out)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, *d)
		prev = h
	}
	return recs
}

func cloneRecord(r Record) Record {
	c := r
	c.Vals = make(map[string]Value, len(r.Vals))
	for k, v := range r.Vals {
		c.Vals[k] = v
	}
	c.Prev = slices.Clone(r.Prev)
	c.Hash = slices.Clone(r.Hash)
	c.Sig = slices.Clone(r.Sig)
	return c
}

// alter changes one field or value of r so that its encoding changes, and
// says what it changed.
func alter(g *gen, r *Record) string {
	for {
		switch g.r.IntN(13) {
		case 0:
			r.Seq += 1 + g.r.Uint64N(5)
			return "seq"
		case 1:
			r.Dev += "x"
			return "dev"
		case 2:
			r.Kind = KindGateway
			return "kind"
		case 3:
			r.TS += 1 + g.r.Int64N(1000)
			return "ts"
		case 4:
			r.TSrc = map[string]string{TSrcDevice: TSrcGateway, TSrcGateway: TSrcUnsynced, TSrcUnsynced: TSrcDevice}[r.TSrc]
			return "tsrc"
		case 5:
			r.Grid += "g"
			return "grid"
		case 6:
			r.Q++
			return "q"
		case 7:
			r.Vals["added"] = Int(1)
			return "vals add"
		case 8:
			for _, k := range sortedKeys(r.Vals) {
				delete(r.Vals, k)
				return "vals remove"
			}
		case 9:
			for _, k := range sortedKeys(r.Vals) {
				v := r.Vals[k]
				if m, e, ok := v.Decimal(); ok && e > -1e6 && m < 1e17 && m > -1e17 {
					r.Vals[k] = Dec(m*10, e-1) // same number, different record
					return "vals rescale"
				}
				r.Vals[k] = Text(v.String() + "!")
				return "vals change"
			}
		case 10:
			for _, k := range sortedKeys(r.Vals) {
				r.Vals[k] = Bool(!r.Vals[k].Equal(Bool(true)))
				return "vals retype"
			}
		case 11:
			r.Prev[g.r.IntN(32)] ^= 1 << g.r.IntN(8)
			return "prev"
		case 12:
			r.Hash[g.r.IntN(32)] ^= 1 << g.r.IntN(8)
			return "hash"
		}
	}
}

// TestVerifyChainRandom: 3000 seeded mutations of sealed chains (delete,
// alter any field or value, swap, move, replay a copy, insert a forged
// record with or without a correct hash). VerifyChain must name exactly
// the first record whose position no longer holds the original, except
// that a correctly hashed forgery is only visible at the original record
// after it (its prev no longer matches).
func TestVerifyChainRandom(t *testing.T) {
	const seed = 20260101
	g := newGen(seed)
	counts := map[string]int{}
	for iter := range 3000 {
		orig := sealedChain(t, g, 3+g.r.IntN(10))
		n := len(orig)
		if err := VerifyChain(orig, nil); err != nil {
			t.Fatalf("iter %d: intact chain: %v", iter, err)
		}
		mut := make([]Record, n)
		for i := range orig {
			mut[i] = cloneRecord(orig[i])
		}
		var what, reason string
		expect := -1 // -1: first position that differs from orig
		switch g.r.IntN(6) {
		case 0:
			k := g.r.IntN(n - 1) // the last one is out of reach, see TestVerifyChainLimits
			mut = slices.Delete(mut, k, k+1)
			what, reason = fmt.Sprintf("delete %d", k), "prev mismatch"
		case 1:
			k := g.r.IntN(n)
			f := alter(g, &mut[k])
			what, reason = fmt.Sprintf("alter %d %s", k, f), "hash mismatch" // prev is hashed too
		case 2:
			k := g.r.IntN(n - 1)
			j := k + 1 + g.r.IntN(n-k-1)
			mut[k], mut[j] = mut[j], mut[k]
			what, reason = fmt.Sprintf("swap %d %d", k, j), "prev mismatch"
		case 3:
			j, k := g.r.IntN(n), g.r.IntN(n)
			if j == k {
				k = (j + 1) % n
			}
			r := mut[j]
			mut = slices.Insert(slices.Delete(mut, j, j+1), k, r)
			what, reason = fmt.Sprintf("move %d to %d", j, k), "prev mismatch"
		case 4:
			m, k := g.r.IntN(n), g.r.IntN(n+1)
			mut = slices.Insert(mut, k, cloneRecord(orig[m]))
			what, reason = fmt.Sprintf("replay %d at %d", m, k), "prev mismatch"
		case 5:
			k := g.r.IntN(n + 1)
			f := g.record(1, false)
			f.Kind = KindRecorder
			f.Prev = make([]byte, 32)
			if k > 0 {
				f.Seq, f.Prev = orig[k-1].Seq+1, slices.Clone(orig[k-1].Hash)
			}
			h, err := ChainHash(&f)
			if err != nil {
				t.Fatal(err)
			}
			f.Hash = h[:]
			if k == n || g.r.IntN(2) == 0 {
				f.Hash[0] ^= 0x80 // forged badly
				what, reason = fmt.Sprintf("insert bad forgery at %d", k), "hash mismatch"
			} else {
				expect = k + 1
				what, reason = fmt.Sprintf("insert good forgery at %d", k), "prev mismatch"
			}
			mut = slices.Insert(mut, k, f)
		}
		counts[strings.Fields(what)[0]]++
		if expect < 0 {
			expect = firstDiff(t, orig, mut)
		}
		err := VerifyChain(mut, nil)
		var ce *ChainError
		if !errors.As(err, &ce) || !errors.Is(err, ErrChain) {
			t.Fatalf("seed %d iter %d (%s, n=%d): VerifyChain = %v, want a ChainError at %d", seed, iter, what, n, err, expect)
		}
		if ce.Index != expect || ce.Seq != mut[expect].Seq {
			t.Fatalf("seed %d iter %d (%s, n=%d): %v; want index %d seq %d", seed, iter, what, n, err, expect, mut[expect].Seq)
		}
		if !strings.HasPrefix(ce.Reason, reason) {
			t.Fatalf("seed %d iter %d (%s): reason %q, want %q", seed, iter, what, ce.Reason, reason)
		}
	}
	for _, k := range []string{"delete", "alter", "swap", "move", "replay", "insert"} {
		if counts[k] < 100 {
			t.Errorf("mutation %q ran only %d times", k, counts[k])
		}
	}
}

// firstDiff is the first position where mut does not hold orig's record.
func firstDiff(t *testing.T, orig, mut []Record) int {
	for i := range mut {
		if i >= len(orig) || !bytes.Equal(mustEncodeRecord(t, &orig[i]), mustEncodeRecord(t, &mut[i])) {
			return i
		}
	}
	t.Fatal("mutation changed nothing")
	return -1
}

// TestVerifyChainLimits documents what a bare hash chain cannot see, and
// that a segment verifies from a known prev.
func TestVerifyChainLimits(t *testing.T) {
	g := newGen(9)
	recs := sealedChain(t, g, 6)
	if err := VerifyChain(recs[:5], nil); err != nil {
		t.Fatalf("a truncated chain still verifies (by design): %v", err)
	}
	if err := VerifyChain(recs[3:], recs[2].Hash); err != nil {
		t.Fatalf("segment from a known prev: %v", err)
	}
	err := VerifyChain(recs[3:], nil)
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Index != 0 || ce.Seq != 4 {
		t.Fatalf("segment from genesis: %v", err)
	}
	if err := VerifyChain(nil, nil); err != nil {
		t.Fatalf("empty: %v", err)
	}
	// A chain whose links hold but whose seq skips: the gateway's bug, not
	// tampering, and still reported.
	var prev []byte
	var skip []Record
	for i, seq := range []uint64{1, 2, 4} {
		r := g.record(0, false)
		out, h, err := Seal(StreamEvidence, mustEncodeRecord(t, &r), seq, prev)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := DecodeRecord(out)
		skip = append(skip, *d)
		prev = h
		_ = i
	}
	if err := VerifyChain(skip, nil); !errors.As(err, &ce) || ce.Index != 2 || !strings.HasPrefix(ce.Reason, "seq not +1") {
		t.Fatalf("seq skip: %v", err)
	}
}
