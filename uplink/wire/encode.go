package wire

import (
	"bytes"
	"fmt"
	"slices"
)

// The record encoder is written by hand: EncodeRecord runs once per reading
// on the gateway's ingest path, where fxamacker/cbor's reflection cost
// about 2 µs and 8 allocations per record. It writes exactly what that
// library writes in core deterministic mode (cbor.CoreDetEncOptions() with
// NilContainerAsEmpty) for Record and Batch; encode_test.go keeps the
// library path as the reference and compares them on random records.

// Encoded top-level keys of a record, in core deterministic order
// (bytewise by encoding: shorter keys first, then by bytes).
const (
	encQ    = "\x61q"
	encTS   = "\x62ts"
	encAlg  = "\x63alg"
	encDev  = "\x63dev"
	encSeq  = "\x63seq"
	encSig  = "\x63sig"
	encGrid = "\x64grid"
	encHash = "\x64hash"
	encKind = "\x64kind"
	encPrev = "\x64prev"
	encTSrc = "\x64tsrc"
	encVals = "\x64vals"
)

// AppendRecord appends the encoding of r to dst and returns the extended
// slice: the appended bytes equal EncodeRecord(r), and r is validated the
// same way (same errors). On error dst is returned unchanged. It allocates
// only when dst lacks capacity (or the points take more than scratchSize
// bytes or number more than smallVals).
func AppendRecord(dst []byte, r *Record) ([]byte, error) {
	return appendRecord(dst, r)
}

// scratchSize and smallVals size the stack buffers of appendRecord: the
// encoded points and where each pair is.
const (
	scratchSize = 512
	smallVals   = 16
)

// span is where one encoded key/value pair is in the scratch buffer: the
// key at off, the value at val, up to end.
type span struct{ off, val, end int }

// appendRecord validates r as checkRecord does (in the same order, so with
// the same errors) and appends its encoding. Each point is checked and
// encoded in the one pass over the map; the encoded pairs are then sorted
// and copied behind the other keys (vals sorts last of all the keys).
func appendRecord(dst []byte, r *Record) ([]byte, error) {
	return appendRecordAs(dst, r, false)
}

// appendRecordAs is appendRecord; with unhashed it encodes r as its hash
// covers it: without hash and sig (alg stays), the pairing of sig and alg
// unchecked.
func appendRecordAs(dst []byte, r *Record, unhashed bool) ([]byte, error) {
	if unhashed {
		c := *r
		c.Hash, c.Sig = nil, nil
		r = &c
	}
	if err := checkRecordFields(r); err != nil {
		return dst, err
	}
	if err := checkValsLen("vals", r.Vals); err != nil {
		return dst, err
	}
	var (
		scratchBuf [scratchSize]byte
		spanBuf    [smallVals]span
	)
	sc, spans := scratchBuf[:0], spanBuf[:0]
	if len(r.Vals) > smallVals {
		spans = make([]span, 0, len(r.Vals))
	}
	for k, v := range r.Vals {
		if err := checkPoint("vals", k, v); err != nil {
			return dst, err
		}
		sc, spans = appendSpan(sc, spans, k, v)
	}
	if err := checkRecordChainAs(r, unhashed); err != nil {
		return dst, err
	}
	sortSpans(sc, spans)
	return appendSorted(dst, r, sc, spans), nil
}

// Point is one named value of a record, as AppendRecordPoints takes it.
type Point struct {
	Name  string
	Value Value
}

// AppendRecordPoints is AppendRecord for a caller holding its points in a
// slice rather than a map: it appends the encoding of r with pts as its
// vals (r.Vals is not read; pts may be in any order and is reordered in
// place). The appended bytes and the errors equal AppendRecord's for r
// with Vals holding pts; two points with one name are an ErrSchema error.
// It allocates only as AppendRecord does.
func AppendRecordPoints(dst []byte, r *Record, pts []Point) ([]byte, error) {
	if r.Kind == KindGap || r.Kind == KindRejected {
		// Their checks read the points by name: give them the map.
		return appendPointsAsMap(dst, r, pts)
	}
	if err := checkRecordFields(r); err != nil {
		return dst, err
	}
	if len(pts) > maxMapPairs {
		return dst, &Error{Err: ErrTooLarge, Path: "vals", Msg: fmt.Sprintf("%d points, limit %d", len(pts), maxMapPairs)}
	}
	var (
		scratchBuf [scratchSize]byte
		spanBuf    [smallVals]span
	)
	sc, spans := scratchBuf[:0], spanBuf[:0]
	if len(pts) > smallVals {
		spans = make([]span, 0, len(pts))
	}
	for i := range pts {
		if err := checkPoint("vals", pts[i].Name, pts[i].Value); err != nil {
			return dst, err
		}
		sc, spans = appendSpan(sc, spans, pts[i].Name, pts[i].Value)
	}
	if err := checkRecordChainAs(r, false); err != nil {
		return dst, err
	}
	sortSpans(sc, spans)
	for i := 1; i < len(spans); i++ {
		a, b := spans[i-1], spans[i]
		if bytes.Equal(sc[a.off:a.val], sc[b.off:b.val]) {
			return dst, schemaErr("vals", "duplicate key "+textOf(sc[b.off:b.val]))
		}
	}
	return appendSorted(dst, r, sc, spans), nil
}

// appendPointsAsMap is AppendRecordPoints through a map.
func appendPointsAsMap(dst []byte, r *Record, pts []Point) ([]byte, error) {
	c := *r
	c.Vals = make(map[string]Value, len(pts))
	for _, p := range pts {
		if _, dup := c.Vals[p.Name]; dup {
			return dst, schemaErr("vals", "duplicate key "+p.Name)
		}
		c.Vals[p.Name] = p.Value
	}
	return appendRecord(dst, &c)
}

// textOf returns the text of a text string appendText wrote.
func textOf(b []byte) string {
	_, n, off, err := head(b, 0)
	if err != nil || uint64(len(b)-off) < n {
		return ""
	}
	return string(b[off : off+int(n)])
}

// appendSpan encodes the point k: v behind the others in sc and notes
// where it is.
func appendSpan(sc []byte, spans []span, k string, v Value) ([]byte, []span) {
	off := len(sc)
	sc = appendText(sc, k)
	val := len(sc)
	sc = v.appendCBOR(sc)
	return sc, append(spans, span{off, val, len(sc)})
}

// appendSorted appends a checked record whose points are encoded in sc,
// in the order of spans.
func appendSorted(dst []byte, r *Record, sc []byte, spans []span) []byte {
	n, size := recordSize(r, len(spans), len(sc))
	dst = slices.Grow(dst, size)

	dst = appendHead(dst, majMap, n)
	if r.Q != 0 {
		dst = appendUint(append(dst, encQ...), r.Q)
	}
	dst = appendInt(append(dst, encTS...), r.TS)
	if r.Alg != "" {
		dst = appendText(append(dst, encAlg...), r.Alg)
	}
	dst = appendText(append(dst, encDev...), r.Dev)
	dst = appendUint(append(dst, encSeq...), r.Seq)
	if len(r.Sig) != 0 {
		dst = appendBytes(append(dst, encSig...), r.Sig)
	}
	if r.Grid != "" {
		dst = appendText(append(dst, encGrid...), r.Grid)
	}
	if len(r.Hash) != 0 {
		dst = appendBytes(append(dst, encHash...), r.Hash)
	}
	dst = appendText(append(dst, encKind...), r.Kind)
	if len(r.Prev) != 0 {
		dst = appendBytes(append(dst, encPrev...), r.Prev)
	}
	dst = appendText(append(dst, encTSrc...), r.TSrc)
	dst = appendHead(append(dst, encVals...), majMap, uint64(len(spans)))
	for _, s := range spans {
		dst = append(dst, sc[s.off:s.end]...)
	}
	return dst
}

// recordSize returns the number of pairs of r's encoding and its length,
// given the number of points and the length of their encoding.
func recordSize(r *Record, points, pointBytes int) (n uint64, size int) {
	n = 6
	size = 1 + // map head (at most 12 pairs)
		len(encTS) + intLen(r.TS) +
		len(encDev) + headLen(uint64(len(r.Dev))) + len(r.Dev) +
		len(encSeq) + headLen(r.Seq) +
		len(encKind) + headLen(uint64(len(r.Kind))) + len(r.Kind) +
		len(encTSrc) + headLen(uint64(len(r.TSrc))) + len(r.TSrc) +
		len(encVals) + headLen(uint64(points)) + pointBytes
	if r.Q != 0 {
		n++
		size += len(encQ) + headLen(r.Q)
	}
	if r.Grid != "" {
		n++
		size += len(encGrid) + headLen(uint64(len(r.Grid))) + len(r.Grid)
	}
	if len(r.Hash) != 0 {
		n++
		size += len(encHash) + headLen(uint64(len(r.Hash))) + len(r.Hash)
	}
	if len(r.Prev) != 0 {
		n++
		size += len(encPrev) + headLen(uint64(len(r.Prev))) + len(r.Prev)
	}
	if r.Alg != "" {
		n++
		size += len(encAlg) + headLen(uint64(len(r.Alg))) + len(r.Alg)
	}
	if len(r.Sig) != 0 {
		n++
		size += len(encSig) + headLen(uint64(len(r.Sig))) + len(r.Sig)
	}
	return n, size
}

// sortSpans sorts encoded pairs bytewise by their encoded keys (RFC 8949
// §4.2.1). The keys are distinct and no encoded text key is a prefix of
// another (its head fixes its length), so two pairs first differ inside
// both keys: comparing whole pairs compares the keys.
func sortSpans(sc []byte, spans []span) {
	cmp := func(a, b span) int {
		// Fast path: the first bytes are the keys' heads, which differ
		// for keys of different lengths below 24 bytes.
		if x, y := sc[a.off], sc[b.off]; x != y {
			return int(x) - int(y)
		}
		return bytes.Compare(sc[a.off:a.end], sc[b.off:b.end])
	}
	if len(spans) > smallVals {
		slices.SortFunc(spans, cmp)
		return
	}
	for i := 1; i < len(spans); i++ { // insertion sort: few points
		for j := i; j > 0 && cmp(spans[j], spans[j-1]) < 0; j-- {
			spans[j], spans[j-1] = spans[j-1], spans[j]
		}
	}
}

// headLen is the length of the shortest head for arg.
func headLen(arg uint64) int {
	switch {
	case arg < 24:
		return 1
	case arg <= 0xff:
		return 2
	case arg <= 0xffff:
		return 3
	case arg <= 0xffffffff:
		return 5
	}
	return 9
}

func intLen(v int64) int {
	if v < 0 {
		return headLen(uint64(-1 - v))
	}
	return headLen(uint64(v))
}

// appendBatch appends the encoding of a checked batch: keys "v", "gw",
// "recs", "stream" (as AppendBatch).
func appendBatch(dst []byte, b *Batch) ([]byte, error) {
	dst = append(dst, 0xa4, 0x61, 'v')
	dst = appendUint(dst, b.V)
	dst = appendText(append(dst, 0x62, 'g', 'w'), b.GW)
	dst = append(dst, 0x64, 'r', 'e', 'c', 's')
	dst = appendHead(dst, majArray, uint64(len(b.Recs)))
	for i := range b.Recs {
		start := len(dst)
		var err error
		if dst, err = appendRecord(dst, &b.Recs[i]); err != nil {
			return nil, at("recs", at(idx(i), err)) // checked already: not reached
		}
		if i == 0 { // guess: the other records are about as long as the first
			dst = slices.Grow(dst, (len(dst)-start)*(len(b.Recs)-1)+8+len(b.Stream))
		}
	}
	dst = append(dst, 0x66, 's', 't', 'r', 'e', 'a', 'm')
	return appendText(dst, b.Stream), nil
}
