package rs485

import (
	"bytes"
	"testing"
)

// A toy framing for the tests: 68 L DATA(L) CS 16, CS over 68..DATA.
func toyFrame(data ...byte) []byte {
	b := append([]byte{0x68, byte(len(data))}, data...)
	return append(b, Checksum(b), 0x16)
}

func toyCandidate(rest []byte) (Candidate, int) {
	if len(rest) < 2 {
		return Incomplete, 0
	}
	total := 4 + int(rest[1])
	if rest[1] > 50 {
		return Invalid, 0
	}
	if len(rest) < total {
		return Incomplete, 0
	}
	if rest[total-1] != 0x16 || rest[total-2] != Checksum(rest[:total-2]) {
		return Invalid, 0
	}
	return Complete, total
}

func TestResync(t *testing.T) {
	good := toyFrame(1, 2, 3)
	bad := append([]byte(nil), good...)
	bad[len(bad)-2]++
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, c := range []struct {
		name             string
		buf              []byte
		begin, end, keep int
		ok               bool
	}{
		{"frame", good, 0, 7, 0, true},
		{"noise before", cat([]byte{0x00, 0x68, 0x99}, good), 3, 10, 0, true},
		{"bad checksum, then a frame", cat(bad, good), 7, 14, 0, true},
		{"incomplete does not hide a later frame", cat([]byte{0x68, 40, 1}, good), 3, 10, 0, true},
		{"noise only", []byte{1, 2, 3}, 0, 0, 3, false},
		{"noise, then the start of a frame", cat([]byte{1, 2}, good[:4]), 0, 0, 2, false},
		{"empty", nil, 0, 0, 0, false},
	} {
		begin, end, keep, ok := Resync(c.buf, 0x68, toyCandidate)
		if begin != c.begin || end != c.end || keep != c.keep || ok != c.ok {
			t.Errorf("%s: Resync(% X) = %d, %d, %d, %v; want %d, %d, %d, %v", c.name, c.buf, begin, end, keep, ok, c.begin, c.end, c.keep, c.ok)
		}
	}
}

// FuzzResync: a found frame is a complete candidate starting with the
// start byte and nothing complete comes before it; without one, every
// start byte in the dropped part is an invalid candidate.
func FuzzResync(f *testing.F) {
	f.Add(toyFrame(1, 2, 3))
	f.Add(append([]byte{0x68, 40, 0x68}, toyFrame()...))
	f.Add([]byte{0xFE, 0xFE, 0x68, 0x01})
	f.Fuzz(func(t *testing.T, buf []byte) {
		begin, end, keep, ok := Resync(buf, 0x68, toyCandidate)
		if ok {
			if begin < 0 || end > len(buf) || begin >= end || buf[begin] != 0x68 {
				t.Fatalf("frame at [%d:%d] of % X", begin, end, buf)
			}
			if c, n := toyCandidate(buf[begin:]); c != Complete || n != end-begin {
				t.Fatalf("frame at [%d:%d] is not complete", begin, end)
			}
			for i := range begin {
				if c, _ := toyCandidate(buf[i:]); buf[i] == 0x68 && c == Complete {
					t.Fatalf("a complete frame at %d comes before the one found at %d", i, begin)
				}
			}
			return
		}
		if keep < 0 || keep > len(buf) {
			t.Fatalf("keep %d of %d bytes", keep, len(buf))
		}
		for i := range keep {
			if c, _ := toyCandidate(buf[i:]); buf[i] == 0x68 && c != Invalid {
				t.Fatalf("dropping %d bytes loses a candidate at %d", keep, i)
			}
		}
	})
}
