package wire

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
)

// The hot-path helpers below work on EncodeRecord outputs without decoding
// them: they scan the top-level map and splice bytes. Because the input is
// already in deterministic form and keys are kept in their sorted order,
// the results are byte-identical to encoding the changed Record.

// Pre-encoded keys.
var (
	keySeq  = []byte{0x63, 's', 'e', 'q'}
	keyPrev = []byte{0x64, 'p', 'r', 'e', 'v'}
	keyHash = []byte{0x64, 'h', 'a', 's', 'h'}
	keySig  = []byte{0x63, 's', 'i', 'g'}
	keyAlg  = []byte{0x63, 'a', 'l', 'g'}
	keyVals = []byte{0x64, 'v', 'a', 'l', 's'}
)

// isChainKey reports whether an encoded key is one of the evidence-only
// keys prev, hash, sig and alg.
func isChainKey(k []byte) bool {
	if len(k) != 4 && len(k) != 5 {
		return false
	}
	switch string(k) {
	case "\x64prev", "\x64hash", "\x63sig", "\x63alg": // keyPrev, keyHash, keySig, keyAlg
		return true
	}
	return false
}

// pair is one top-level key/value pair of an encoded map: key holds the
// encoded key, all the encoded key and value.
type pair struct {
	key []byte
	all []byte
}

// recordHead checks the record's map head and returns the pair count and
// where the first pair starts.
func recordHead(rec []byte) (n uint64, off int, err error) {
	major, n, off, err := head(rec, 0)
	if err != nil {
		return 0, 0, err
	}
	if major != majMap {
		return 0, 0, fmt.Errorf("want a map, got %s", describe(rec))
	}
	if n > 64 {
		return 0, 0, fmt.Errorf("record map with %d pairs", n)
	}
	return n, off, nil
}

// nextPair reads the pair at rec[off:] and returns it and the offset of its
// value.
func nextPair(rec []byte, off int) (p pair, voff int, err error) {
	major, _, _, err := head(rec, off)
	if err != nil {
		return pair{}, 0, err
	}
	if major != majText {
		return pair{}, 0, errors.New("record key is not a text string")
	}
	voff, err = skip(rec, off, 0)
	if err != nil {
		return pair{}, 0, err
	}
	end, err := skip(rec, voff, 0)
	if err != nil {
		return pair{}, 0, err
	}
	return pair{key: rec[off:voff], all: rec[off:end]}, voff, nil
}

// SetSeq returns a copy of rec (an EncodeRecord output) with seq replaced:
// the result equals EncodeRecord of the same record with that seq. It scans
// only the pairs up to "seq" (q, ts and dev sort before it).
func SetSeq(rec []byte, seq uint64) ([]byte, error) {
	n, off, err := recordHead(rec)
	if err != nil {
		return nil, fmt.Errorf("%w: SetSeq: %v", ErrMalformed, err)
	}
	for range n {
		p, voff, err := nextPair(rec, off)
		if err != nil {
			return nil, fmt.Errorf("%w: SetSeq: %v", ErrMalformed, err)
		}
		if bytes.Equal(p.key, keySeq) {
			if major, _, _, _ := head(rec, voff); major != majUint {
				return nil, fmt.Errorf("%w: SetSeq: seq is a %s", ErrMalformed, describe(rec[voff:]))
			}
			end := off + len(p.all)
			out := make([]byte, 0, len(rec)+9)
			out = append(out, rec[:voff]...)
			out = appendUint(out, seq)
			return append(out, rec[end:]...), nil
		}
		off += len(p.all)
	}
	return nil, fmt.Errorf("%w: SetSeq: record has no seq", ErrMalformed)
}

// AppendBatch appends a batch framing already-encoded records (EncodeRecord
// outputs with their seq set, in ascending seq) to dst. The result equals
// Encode(&Batch{V: 1, GW: gw, Stream: stream, Recs: <the records>}). It
// does not validate: the records were validated when they were encoded.
func AppendBatch(dst []byte, gw, stream string, recs [][]byte) []byte {
	// Keys in deterministic order: "v", "gw", "recs", "stream".
	dst = append(dst, 0xa4, 0x61, 'v', Version, 0x62, 'g', 'w')
	dst = appendText(dst, gw)
	dst = append(dst, 0x64, 'r', 'e', 'c', 's')
	dst = appendHead(dst, majArray, uint64(len(recs)))
	for _, r := range recs {
		dst = append(dst, r...)
	}
	dst = append(dst, 0x66, 's', 't', 'r', 'e', 'a', 'm')
	return appendText(dst, stream)
}

// Seal is what the gateway's queue runs once a record's seq is known. For
// the telemetry, events and alarms streams it is SetSeq and returns no
// hash (it refuses a record carrying prev, hash, sig or alg, which Decode
// would reject on those streams). For evidence it sets seq and prev =
// prevHash (nil or empty means 32 zero bytes: the first record), computes
// hash = SHA-256 of the record encoded without hash, and returns the
// sealed record and its hash (the next record's prev). Any prev, hash, sig
// or alg already in rec is replaced. Seal does not sign: a Sealer with a
// Signer does.
func Seal(stream string, rec []byte, seq uint64, prevHash []byte) (out []byte, hash []byte, err error) {
	if stream != StreamEvidence {
		if !IsRecordStream(stream) {
			return nil, nil, fmt.Errorf("%w: Seal: %q is not a record stream", ErrSchema, stream)
		}
		out, err := sealPlain(rec, seq)
		return out, nil, err
	}
	return sealEvidence(rec, seq, prevHash, nil)
}

// sealPlain seals a record outside the evidence stream in one pass over
// its keys: none may be a chain key, and seq (an unsigned integer) is
// replaced. The last pair's value is not walked when it is vals, the
// largest and, in EncodeRecord's key order, the last: EncodeRecord
// checked it, and a chain key cannot hide in it (only its head is read).
func sealPlain(rec []byte, seq uint64) ([]byte, error) {
	n, off, err := recordHead(rec)
	if err != nil {
		return nil, fmt.Errorf("%w: Seal: %v", ErrMalformed, err)
	}
	seqAt, seqEnd := -1, -1
	for i := range n {
		if major, _, _, err := head(rec, off); err != nil || major != majText {
			return nil, fmt.Errorf("%w: Seal: record key %d is not a text string", ErrMalformed, i)
		}
		voff, err := skip(rec, off, 0)
		if err != nil {
			return nil, fmt.Errorf("%w: Seal: %v", ErrMalformed, err)
		}
		key := rec[off:voff]
		if isChainKey(key) {
			return nil, fmt.Errorf("%w: Seal: %s outside the evidence stream", ErrSchema, key[1:])
		}
		if i == n-1 && bytes.Equal(key, keyVals) {
			if major, _, _, err := head(rec, voff); err != nil || major != majMap {
				return nil, fmt.Errorf("%w: Seal: vals is a %s", ErrMalformed, describe(rec[voff:]))
			}
			break
		}
		end, err := skip(rec, voff, 0)
		if err != nil {
			return nil, fmt.Errorf("%w: Seal: %v", ErrMalformed, err)
		}
		if bytes.Equal(key, keySeq) {
			if major, _, _, _ := head(rec, voff); major != majUint {
				return nil, fmt.Errorf("%w: Seal: seq is a %s", ErrMalformed, describe(rec[voff:]))
			}
			seqAt, seqEnd = voff, end
		}
		off = end
	}
	if seqAt < 0 {
		return nil, fmt.Errorf("%w: Seal: record has no seq", ErrMalformed)
	}
	out := make([]byte, 0, len(rec)+9)
	out = append(out, rec[:seqAt]...)
	out = appendUint(out, seq)
	return append(out, rec[seqEnd:]...), nil
}

// Sealer seals the records of one stream for the gateway's queue: its Seal
// method is the queue's seal hook. On the evidence stream it chains each
// record to the one before (the hook's state is the previous hash) and,
// with a Signer, signs it: alg names the algorithm (it is hashed with the
// record) and sig is the signature of hash. Elsewhere it only sets the seq.
type Sealer struct {
	stream string
	signer Signer
}

// NewSealer returns the sealer of stream. signer may be nil: evidence is
// then chained but not signed, which a platform holding the gateway's key
// rejects.
func NewSealer(stream string, signer Signer) *Sealer {
	return &Sealer{stream: stream, signer: signer}
}

// Seal gives payload (an EncodeRecord output) its seq and, on evidence,
// its place in the chain and its signature. state is the hash of the
// previous evidence record (empty for the first) and newState this
// record's; on the other streams state is passed through unchanged.
func (s *Sealer) Seal(seq uint64, payload, state []byte) (stored, newState []byte, err error) {
	if s.stream != StreamEvidence {
		out, _, err := Seal(s.stream, payload, seq, nil)
		if err != nil {
			return nil, nil, err
		}
		return out, state, nil
	}
	return sealEvidence(payload, seq, state, s.signer)
}

// sealEvidence seals an evidence record; signer may be nil.
func sealEvidence(rec []byte, seq uint64, prevHash []byte, signer Signer) (out []byte, hash []byte, err error) {
	switch len(prevHash) {
	case 0:
		prevHash = make([]byte, HashSize)
	case HashSize:
	default:
		return nil, nil, fmt.Errorf("%w: Seal: prev hash is %d bytes, want %d", ErrSchema, len(prevHash), HashSize)
	}
	var alg string
	if signer != nil {
		alg = signer.Alg()
		if msg := algProblem(alg); msg != "" {
			return nil, nil, fmt.Errorf("%w: Seal: signer's alg %s", ErrKey, msg)
		}
	}
	pairs, size, err := recordPairs(rec, seq)
	if err != nil {
		return nil, nil, err
	}
	pairs = insertPair(pairs, appendBytes(append(make([]byte, 0, 39), keyPrev...), prevHash))
	size += 39
	if signer != nil {
		algPair := appendText(append(make([]byte, 0, len(keyAlg)+1+len(alg)), keyAlg...), alg)
		pairs = insertPair(pairs, algPair)
		size += len(algPair)
	}
	unhashed := joinPairs(make([]byte, 0, size+1), pairs)
	sum := sha256.Sum256(unhashed)
	pairs = insertPair(pairs, appendBytes(append(make([]byte, 0, 39), keyHash...), sum[:]))
	size += 39
	if signer != nil {
		sig, err := signer.Sign(sum[:])
		if err != nil {
			return nil, nil, fmt.Errorf("wire: Seal: signing evidence record %d: %w", seq, err)
		}
		if err := checkSig("sig", "alg", sig, alg); err != nil {
			return nil, nil, fmt.Errorf("wire: Seal: signer returned a bad signature for record %d: %w", seq, err)
		}
		sigPair := appendBytes(append(make([]byte, 0, len(keySig)+2+len(sig)), keySig...), sig)
		pairs = insertPair(pairs, sigPair)
		size += len(sigPair)
	}
	return joinPairs(make([]byte, 0, size+1), pairs), sum[:], nil
}

// recordPairs splits an encoded record into its pairs, with seq set and
// without prev, hash, sig or alg, checking deterministic key order.
func recordPairs(rec []byte, seq uint64) (pairs [][]byte, size int, err error) {
	n, off, err := recordHead(rec)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: Seal: %v", ErrMalformed, err)
	}
	seqPair := appendUint(append(make([]byte, 0, 13), keySeq...), seq)
	pairs = make([][]byte, 0, n+4)
	sawSeq := false
	for range n {
		p, voff, err := nextPair(rec, off)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: Seal: %v", ErrMalformed, err)
		}
		off += len(p.all)
		switch {
		case bytes.Equal(p.key, keySeq):
			if major, _, _, _ := head(rec, voff); major != majUint {
				return nil, 0, fmt.Errorf("%w: Seal: seq is a %s", ErrMalformed, describe(rec[voff:]))
			}
			sawSeq = true
			p.all = seqPair
		case isChainKey(p.key):
			continue
		}
		if len(pairs) > 0 && bytes.Compare(pairs[len(pairs)-1], p.all) >= 0 {
			return nil, 0, fmt.Errorf("%w: Seal: record keys not in deterministic order", ErrMalformed)
		}
		pairs = append(pairs, p.all)
		size += len(p.all)
	}
	if off != len(rec) {
		return nil, 0, fmt.Errorf("%w: Seal: %d trailing bytes", ErrMalformed, len(rec)-off)
	}
	if !sawSeq {
		return nil, 0, fmt.Errorf("%w: Seal: record has no seq", ErrMalformed)
	}
	return pairs, size, nil
}

// insertPair inserts p into pairs sorted bytewise by encoded key. Keys are
// distinct, so comparing whole pairs orders them by key.
func insertPair(pairs [][]byte, p []byte) [][]byte {
	i := 0
	for i < len(pairs) && bytes.Compare(pairs[i], p) < 0 {
		i++
	}
	pairs = append(pairs, nil)
	copy(pairs[i+1:], pairs[i:])
	pairs[i] = p
	return pairs
}

func joinPairs(dst []byte, pairs [][]byte) []byte {
	dst = appendHead(dst, majMap, uint64(len(pairs)))
	for _, p := range pairs {
		dst = append(dst, p...)
	}
	return dst
}
