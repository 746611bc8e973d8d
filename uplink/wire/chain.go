package wire

import (
	"bytes"
	"crypto/sha256"
)

// ChainHash returns SHA-256 of the deterministic CBOR of r without Hash:
// the value r.Hash must hold on the evidence stream.
func ChainHash(r *Record) ([32]byte, error) {
	c := *r
	c.Hash = nil
	p, err := EncodeRecord(&c)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(p), nil
}

// VerifyChain checks that recs are consecutive evidence records of one
// gateway: each record's hash is its ChainHash, its prev is the hash of the
// record before it (prev for the first; nil means 32 zero bytes, the start
// of the chain, where the first seq must be 1) and its seq is one more
// than the previous record's. It returns a *ChainError naming the first
// record that breaks the chain:
//
//   - "hash mismatch": the record was altered (any field, or its hash);
//   - "prev mismatch": a record was removed, reordered or inserted before
//     it, or its prev was altered;
//   - "seq not +1": the seqs are not contiguous though the links hold.
//
// A chain cannot show that records were cut off its end, nor that a
// correctly hashed record was appended: compare the last seq with what the
// gateway reports.
func VerifyChain(recs []Record, prev []byte) error {
	want := prev
	genesis := false
	if len(want) == 0 {
		want = make([]byte, HashSize)
	}
	if bytes.Equal(want, make([]byte, HashSize)) {
		genesis = true
	}
	for i := range recs {
		r := &recs[i]
		fail := func(reason string) error { return &ChainError{Index: i, Seq: r.Seq, Reason: reason} }
		if len(r.Hash) != HashSize {
			return fail("hash missing or not 32 bytes")
		}
		h, err := ChainHash(r)
		if err != nil {
			return fail("record invalid: " + err.Error())
		}
		if !bytes.Equal(h[:], r.Hash) {
			return fail("hash mismatch: record altered")
		}
		if !bytes.Equal(r.Prev, want) {
			return fail("prev mismatch: a record was removed, reordered or inserted before this one")
		}
		switch {
		case i > 0 && r.Seq != recs[i-1].Seq+1:
			return fail("seq not +1 after " + uitoa(recs[i-1].Seq))
		case i == 0 && genesis && r.Seq != 1:
			return fail("first record of the chain does not have seq 1")
		}
		want = r.Hash
	}
	return nil
}
