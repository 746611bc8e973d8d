package cjt188

// Link layer (protocols.md §3.2):
//
//	[FE…] 68 T A0..A6 C L DATA(L) CS 16
//
// No +0x33 offset; CS is the sum of the bytes from 68 through the last
// DATA byte. DATA starts with DI (2 bytes) and SER.

const (
	frameStart    = 0x68
	frameEnd      = 0x16
	preambleByte  = 0xFE
	frameOverhead = 13  // 68 + T + 7 address + C + L + CS + 16
	maxDataLen    = 100 // longer L is taken as a false start
	anyType       = 0xAA
)

// frame is one decoded frame; addr is in wire order (A0 first).
type frame struct {
	typ  byte
	addr [7]byte
	c    byte
	data []byte
}

// scan finds the first complete, valid frame in buf.
//
// ok: the frame occupies buf[start:end] (start is its 0x68).
// !ok: buf[:keep] is garbage that can be dropped; buf[keep:] may still
// become a frame when more bytes arrive.
//
// Every 0x68 is tried as a frame start, so noise, a false start or a frame
// with a bad checksum costs one byte; an incomplete candidate does not
// hide a complete frame that starts after it.
func scan(buf []byte) (f frame, start, end, keep int, ok bool) {
	keep = len(buf)
	for i := 0; i < len(buf); i++ {
		if buf[i] != frameStart {
			continue
		}
		rest := buf[i:]
		if len(rest) < 11 {
			keep = min(keep, i)
			continue
		}
		n := int(rest[10])
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
		f.typ = rest[1]
		copy(f.addr[:], rest[2:9])
		f.c = rest[9]
		f.data = append([]byte(nil), rest[11:11+n]...)
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

// encode builds the wire bytes of f with preamble FE bytes in front.
func (f frame) encode(preamble int) []byte {
	b := make([]byte, 0, preamble+frameOverhead+len(f.data))
	for range preamble {
		b = append(b, preambleByte)
	}
	b = append(b, frameStart, f.typ)
	b = append(b, f.addr[:]...)
	b = append(b, f.c, byte(len(f.data)))
	b = append(b, f.data...)
	b = append(b, checksum(b[preamble:]), frameEnd)
	return b
}
