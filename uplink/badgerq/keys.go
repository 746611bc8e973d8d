package badgerq

import (
	"encoding/binary"
	"fmt"
)

const (
	entryTag    = "e/"
	metaTag     = "m/"
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

// entryKey appends prefix and big-endian seq to dst.
func entryKey(dst, prefix []byte, seq uint64) []byte {
	dst = append(dst, prefix...)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// parseEntryKey returns the seq of a key under prefix.
func parseEntryKey(prefix, key []byte) (uint64, error) {
	if len(key) != len(prefix)+8 || string(key[:len(prefix)]) != string(prefix) {
		return 0, fmt.Errorf("%w: entry key %q is not %q + 8-byte seq", ErrCorrupt, key, prefix)
	}
	seq := binary.BigEndian.Uint64(key[len(prefix):])
	if seq == 0 {
		return 0, fmt.Errorf("%w: entry key %q has seq 0", ErrCorrupt, key)
	}
	return seq, nil
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
func (a *keyArena) key(prefix []byte, seq uint64) []byte {
	n := len(prefix) + 8
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, max(keyChunk, n))
	}
	start := len(a.buf)
	a.buf = entryKey(a.buf, prefix, seq)
	return a.buf[start:len(a.buf):len(a.buf)]
}
