package dlt645sim

import "github.com/townlink/townlink/firmware-sim/internal/rs485"

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

// scan finds the first complete, valid frame in buf, resynchronising on
// every 0x68 (see rs485.Resync).
//
// ok: the frame occupies buf[start:end] (start is its first 0x68).
// !ok: buf[:keep] is garbage that can be dropped; buf[keep:] may still
// become a frame when more bytes arrive.
func scan(buf []byte) (f frame, start, end, keep int, ok bool) {
	start, end, keep, ok = rs485.Resync(buf, frameStart, candidate)
	if !ok {
		return frame{}, 0, 0, keep, false
	}
	rest := buf[start:end]
	copy(f.addr[:], rest[1:7])
	f.c = rest[8]
	f.data = make([]byte, int(rest[9]))
	for j := range f.data {
		f.data[j] = rest[10+j] - dataOffset
	}
	return f, start, end, 0, true
}

// candidate judges the bytes from one 0x68 on.
func candidate(rest []byte) (rs485.Candidate, int) {
	if len(rest) >= 8 && rest[7] != frameStart {
		return rs485.Invalid, 0
	}
	if len(rest) < 10 {
		return rs485.Incomplete, 0
	}
	n := int(rest[9])
	if n > maxDataLen {
		return rs485.Invalid, 0
	}
	total := frameOverhead + n
	if len(rest) < total {
		return rs485.Incomplete, 0
	}
	if rest[total-1] != frameEnd || rest[total-2] != rs485.Checksum(rest[:total-2]) {
		return rs485.Invalid, 0
	}
	return rs485.Complete, total
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
	b = append(b, rs485.Checksum(b[preamble:]), frameEnd)
	return b
}
