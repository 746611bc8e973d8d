package dlt645

// Link layer (protocols.md §1.1, the same for 1997 §2):
//
//	[FE…] 68 A0..A5 68 C L DATA(L, each byte +0x33) CS 16
//
// CS is the sum of the bytes from the first 68 through the last DATA byte.

const (
	frameStart    = 0x68
	frameEnd      = 0x16
	preambleByte  = 0xFE
	dataOffset    = 0x33
	frameOverhead = 12  // 68 + 6 address + 68 + C + L + CS + 16
	maxDataLen    = 200 // read replies; requests are shorter
)

// frame is one decoded frame. addr is in wire order (A0 first) and data
// has had 0x33 subtracted.
type frame struct {
	addr [6]byte
	c    byte
	data []byte
}

// scan finds the first complete, valid frame in buf.
//
// ok: the frame occupies buf[start:end] (start is its first 0x68).
// !ok: buf[:keep] is garbage that can be dropped; buf[keep:] may still
// become a frame when more bytes arrive.
//
// Every 0x68 is tried as a frame start, so noise, a false start or a frame
// with a bad checksum costs one byte and the scan resynchronises on the
// next 0x68. An incomplete candidate does not hide a complete frame that
// starts after it.
func scan(buf []byte) (f frame, start, end, keep int, ok bool) {
	keep = len(buf)
	for i := 0; i < len(buf); i++ {
		if buf[i] != frameStart {
			continue
		}
		rest := buf[i:]
		if len(rest) >= 8 && rest[7] != frameStart {
			continue
		}
		if len(rest) < 10 {
			keep = min(keep, i)
			continue
		}
		n := int(rest[9])
		if n > maxDataLen {
			continue
		}
		total := frameOverhead + n
		if len(rest) < total {
			keep = min(keep, i)
			continue
		}
		if rest[total-1] != frameEnd || rest[total-2] != checksum(rest[:total-2]) {
			continue
		}
		copy(f.addr[:], rest[1:7])
		f.c = rest[8]
		f.data = make([]byte, n)
		for j := range n {
			f.data[j] = rest[10+j] - dataOffset
		}
		return f, i, i + total, 0, true
	}
	return frame{}, 0, 0, keep, false
}

func checksum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

// encode builds the wire bytes of f with the given number of FE bytes in
// front.
func (f frame) encode(preamble int) []byte {
	b := make([]byte, 0, preamble+frameOverhead+len(f.data))
	for range preamble {
		b = append(b, preambleByte)
	}
	b = append(b, frameStart)
	b = append(b, f.addr[:]...)
	b = append(b, frameStart, f.c, byte(len(f.data)))
	for _, d := range f.data {
		b = append(b, d+dataOffset)
	}
	b = append(b, checksum(b[preamble:]), frameEnd)
	return b
}
