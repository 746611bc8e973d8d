package cjt188sim

import "github.com/townlink/townlink/firmware-sim/internal/rs485"

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

// scan finds the first complete, valid frame in buf, resynchronising on
// every 0x68 (see rs485.Resync).
//
// ok: the frame occupies buf[start:end] (start is its 0x68).
// !ok: buf[:keep] is garbage that can be dropped; buf[keep:] may still
// become a frame when more bytes arrive.
func scan(buf []byte) (f frame, start, end, keep int, ok bool) {
	start, end, keep, ok = rs485.Resync(buf, frameStart, candidate)
	if !ok {
		return frame{}, 0, 0, keep, false
	}
	rest := buf[start:end]
	f.typ = rest[1]
	copy(f.addr[:], rest[2:9])
	f.c = rest[9]
	f.data = append([]byte(nil), rest[11:end-start-2]...)
	return f, start, end, 0, true
}

// candidate judges the bytes from one 0x68 on.
func candidate(rest []byte) (rs485.Candidate, int) {
	if len(rest) < 11 {
		return rs485.Incomplete, 0
	}
	n := int(rest[10])
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
	b = append(b, rs485.Checksum(b[preamble:]), frameEnd)
	return b
}
