package wire

import (
	"bytes"
	"crypto/sha256"
)

// ChainHash returns SHA-256 of the deterministic CBOR of r without Hash
// and Sig: the value r.Hash must hold on the evidence stream. Alg is
// hashed, so the algorithm cannot be swapped without breaking the hash.
func ChainHash(r *Record) ([32]byte, error) {
	p, err := appendRecordAs(nil, r, true)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(p), nil
}

// VerifyChain is VerifyChainKey without a key: it checks the hashes and
// links, not the signatures.
func VerifyChain(recs []Record, prev []byte) error { return VerifyChainKey(recs, prev, nil) }

// VerifyChainKey checks that recs are consecutive evidence records of one
// gateway: each record's hash is its ChainHash, its prev is the hash of the
// record before it (prev for the first; nil means 32 zero bytes, the start
// of the chain, where the first seq must be 1) and its seq is one more
// than the previous record's. With a Verifier (the gateway's registered
// key) every record must also carry sig, the signature of its hash by
// that key, in v's alg. It returns a *ChainError naming the first record
// that breaks the chain:
//
//   - "hash mismatch": the record was altered (any field, or its hash);
//   - "signature …": with v, the record is unsigned, signed in another
//     alg, or its signature does not verify: it was altered, inserted or
//     renumbered and re-sealed by someone without the gateway's key;
//   - "prev mismatch": a record was removed, reordered or inserted before
//     it, or its prev was altered;
//   - "seq not +1": the seqs are not contiguous though the links hold.
//
// Without v, anyone can alter a record and re-seal the chain after it:
// only the signatures tie the records to the gateway. A chain cannot show
// that records were cut off its end, nor, unsigned, that a correctly
// hashed record was appended: compare the last seq with the gateway's
// status (last_seq and its signed evidence_head, see Audit.AddStatus).
func VerifyChainKey(recs []Record, prev []byte, v Verifier) error {
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
		if v != nil {
			if reason := sigProblem(v, r); reason != "" {
				return fail(reason)
			}
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

// sigProblem explains why r's signature does not verify with v, or
// returns "".
func sigProblem(v Verifier, r *Record) string {
	switch {
	case len(r.Sig) == 0:
		return "signature missing: the gateway signs every evidence record"
	case r.Alg != v.Alg():
		return "signature in alg " + r.Alg + ", the gateway's key is " + v.Alg()
	case !v.Verify(r.Hash, r.Sig):
		return "signature does not verify with the gateway's key: record forged, or altered and re-sealed without the key"
	}
	return ""
}
