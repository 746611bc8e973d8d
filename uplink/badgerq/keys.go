package badgerq

import (
	"encoding/binary"
	"fmt"
)

const (
	entryTag    = "e/"
	metaTag     = "m/"
	ackTag      = "a/"
	metaVersion = 1
	maxNameLen  = 64
	metaHdrLen  = 1 + 8
)

// validName: 1–64 bytes of [A-Za-z0-9._-]; no '/', so no stream's key
// prefix is a prefix of another's.
func validName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("%w: %q: length must be 1..%d", ErrStreamName, name, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%w: %q: byte %#x at %d not in [A-Za-z0-9._-]", ErrStreamName, name, c, i)
		}
	}
	return nil
}

func entryPrefix(name string) []byte { return []byte(entryTag + name + "/") }
func metaKey(name string) []byte     { return []byte(metaTag + name) }
func ackPrefix(name string) []byte   { return []byte(ackTag + name + "/") }

// Ack marks. A segment some of whose records are acked keeps them stored
// until all are gone; its ack mark, "a/" + stream + "/" + the segment's
// last seq (8 bytes BE), records which: bit i (byte i/8, bit i%8) is set
// when seq last-i is acked. It is keyed by the last seq because a drop
// that cuts off a segment's front keeps its last. The mark goes with the
// segment's key.

// encodeAcks returns the ack mark of the segment first..last.
func encodeAcks(first, last uint64, acked func(seq uint64) bool) []byte {
	b := make([]byte, (last-first+8)/8)
	for i := uint64(0); i <= last-first; i++ {
		if acked(last - i) {
			b[i/8] |= 1 << (i % 8)
		}
	}
	return b
}

// parseAckKey returns the last seq of an ack mark's key under prefix.
func parseAckKey(prefix, key []byte) (uint64, error) {
	if len(key) != len(prefix)+8 || string(key[:len(prefix)]) != string(prefix) {
		return 0, fmt.Errorf("%w: ack mark key %q is not %q + 8-byte seq", ErrCorrupt, key, prefix)
	}
	last := binary.BigEndian.Uint64(key[len(prefix):])
	if last == 0 {
		return 0, fmt.Errorf("%w: ack mark key %q has seq 0", ErrCorrupt, key)
	}
	return last, nil
}

// entryKey appends prefix and big-endian seq to dst.
func entryKey(dst, prefix []byte, seq uint64) []byte {
	dst = append(dst, prefix...)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// segKey appends the key of the segment of count records from first to
// dst: prefix + first (8 bytes BE) for one record (the layout of every
// entry before segments), prefix + first + count (2 bytes BE) for more.
func segKey(dst, prefix []byte, first uint64, count int) []byte {
	dst = entryKey(dst, prefix, first)
	if count == 1 {
		return dst
	}
	return binary.BigEndian.AppendUint16(dst, uint16(count))
}

// parseSegKey returns the first seq and the record count of a key under
// prefix.
func parseSegKey(prefix, key []byte) (first uint64, count int, err error) {
	if string(key[:min(len(prefix), len(key))]) != string(prefix) {
		return 0, 0, fmt.Errorf("%w: entry key %q is not under %q", ErrCorrupt, key, prefix)
	}
	switch len(key) - len(prefix) {
	case 8:
		count = 1
	case 10:
		count = int(binary.BigEndian.Uint16(key[len(prefix)+8:]))
		if count < 2 || count > maxSegRecords {
			return 0, 0, fmt.Errorf("%w: segment key %q counts %d records, want 2..%d", ErrCorrupt, key, count, maxSegRecords)
		}
	default:
		return 0, 0, fmt.Errorf("%w: entry key %q is not %q + 8-byte seq [+ 2-byte count]", ErrCorrupt, key, prefix)
	}
	first = binary.BigEndian.Uint64(key[len(prefix):])
	if first == 0 || first+uint64(count-1) < first {
		return 0, 0, fmt.Errorf("%w: entry key %q has seq %d, count %d", ErrCorrupt, key, first, count)
	}
	return first, count, nil
}

// Segments. The data records of one stream that one transaction appends
// are stored as one value, up to maxSegRecords records and maxSegBytes
// bytes: the count (2 bytes BE), each record's length (4 bytes BE), then
// the records one after the other. The header's size follows from the
// count, so a reopen knows the records' bytes from the key index alone. A
// segment of one record (and every gap record) is stored as the record
// itself under an 8-byte-seq key.
const (
	maxSegRecords = 128
	maxSegBytes   = 64 << 10
)

// segHdrLen is the header size of a segment of count records.
func segHdrLen(count int) int { return 2 + 4*count }

// encodeSeg appends the segment value of recs to dst.
func encodeSeg(dst []byte, recs [][]byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(recs)))
	for _, r := range recs {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(r)))
	}
	for _, r := range recs {
		dst = append(dst, r...)
	}
	return dst
}

// decodeSeg returns the offsets of a segment value's count records:
// record i is v[offs[i]:offs[i+1]]. offs is appended to buf[:0].
func decodeSeg(v []byte, count int, buf []int) ([]int, error) {
	hdr := segHdrLen(count)
	if len(v) < hdr || int(binary.BigEndian.Uint16(v)) != count {
		return nil, fmt.Errorf("%w: segment value of %d bytes does not start with its count %d", ErrCorrupt, len(v), count)
	}
	offs := append(buf[:0], hdr)
	pos := hdr
	for i := 0; i < count; i++ {
		l := binary.BigEndian.Uint32(v[2+4*i:]) // compared unconverted: an int is 32 bits on armv7
		if uint64(l) > uint64(len(v)-pos) {
			return nil, fmt.Errorf("%w: segment value of %d bytes: record %d of %d overruns it", ErrCorrupt, len(v), i, count)
		}
		pos += int(l)
		offs = append(offs, pos)
	}
	if pos != len(v) {
		return nil, fmt.Errorf("%w: segment value of %d bytes: its records end at %d", ErrCorrupt, len(v), pos)
	}
	return offs, nil
}

// encodeMeta: version byte, last seq (8 bytes BE), seal state.
func encodeMeta(last uint64, state []byte) []byte {
	b := make([]byte, metaHdrLen, metaHdrLen+len(state))
	b[0] = metaVersion
	binary.BigEndian.PutUint64(b[1:], last)
	return append(b, state...)
}

// decodeMeta parses a meta value; state aliases b.
func decodeMeta(b []byte) (last uint64, state []byte, err error) {
	if len(b) < metaHdrLen {
		return 0, nil, fmt.Errorf("%w: meta value is %d bytes, want at least %d", ErrCorrupt, len(b), metaHdrLen)
	}
	if b[0] != metaVersion {
		return 0, nil, fmt.Errorf("%w: meta version %d, want %d", ErrCorrupt, b[0], metaVersion)
	}
	return binary.BigEndian.Uint64(b[1:metaHdrLen]), b[metaHdrLen:], nil
}

// keyArena hands out entry keys carved from shared chunks, so a
// transaction of a thousand entries allocates a few chunks rather than a
// thousand keys. Keys are never written again once handed out (Badger
// keeps them until the transaction ends); a chunk is garbage once its
// keys are.
type keyArena struct{ buf []byte }

const keyChunk = 16 << 10

// key returns prefix + big-endian seq.
func (a *keyArena) key(prefix []byte, seq uint64) []byte { return a.seg(prefix, seq, 1) }

// ack returns the key of the ack mark of the segment ending at last.
func (a *keyArena) ack(prefix []byte, last uint64) []byte { return a.seg(prefix, last, 1) }

// seg returns the key of the segment of count records from first.
func (a *keyArena) seg(prefix []byte, first uint64, count int) []byte {
	n := len(prefix) + 10
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, max(keyChunk, n))
	}
	start := len(a.buf)
	a.buf = segKey(a.buf, prefix, first, count)
	return a.buf[start:len(a.buf):len(a.buf)]
}
