package cjt188

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/townlink/townlink/drivers/serialio"
	"strings"
)

// Frame bytes.
const (
	preambleByte = 0xFE
	startByte    = 0x68
	endByte      = 0x16
	headerLen    = 11 // 68 T A0..A6 C L
	minFrame     = 13 // header + CS + 16
)

// Control-code bits and function codes (CJ/T 188-2004 §6).
const (
	CtrlReply    = 0x80 // D7: 1 = meter → master
	CtrlAbnormal = 0x40 // D6: abnormal reply
	FuncMask     = 0x3F // D5..D0

	FuncRead         = 0x01 // read data (DI 901F …)
	FuncReadAddress  = 0x03 // read address (DI 810A)
	FuncWrite        = 0x04 // write data
	FuncReadKey      = 0x09 // read key version
	FuncWriteAddress = 0x15 // write address
	FuncWriteSync    = 0x16 // write mechanical sync data
)

// Meter types (T).
const (
	TypeColdWater = 0x10
	TypeHotWater  = 0x11
	TypeDrinking  = 0x12
	TypeReclaimed = 0x13
	TypeHeat      = 0x20
	TypeHeatCold  = 0x21
	TypeGas       = 0x30
	TypeElectric  = 0x40
	TypeAny       = 0xAA
)

// Frame errors.
var (
	ErrShort    = errors.New("cjt188: frame too short")
	ErrStart    = errors.New("cjt188: no 68 start byte")
	ErrLength   = errors.New("cjt188: bad length")
	ErrChecksum = errors.New("cjt188: bad checksum")
	ErrEnd      = errors.New("cjt188: bad end byte")
	ErrAddress  = errors.New("cjt188: bad address")
)

// Address is a meter address as sent on the wire, A0 (lowest two digits)
// first. Its String is the 14 digits high first. Non-BCD bytes are kept.
type Address [7]byte

// WildcardAddress is any meter (one meter on the bus).
const WildcardAddress = "AAAAAAAAAAAAAA"

// ParseAddress reads 1 to 14 digits written high first; fewer than 14 are
// padded with 0 at the high end. Hex digits are accepted (AA wildcard
// bytes; vendor codes in the high bytes).
func ParseAddress(s string) (Address, error) {
	var a Address
	if s == "" || len(s) > 14 {
		return a, fmt.Errorf("%w: %q has %d digits, want 1 to 14", ErrAddress, s, len(s))
	}
	p := strings.Repeat("0", 14-len(s)) + s
	for i := range 7 {
		hi, ok1 := hexNibble(p[12-2*i])
		lo, ok2 := hexNibble(p[13-2*i])
		if !ok1 || !ok2 {
			return Address{}, fmt.Errorf("%w: %q: %q is not a digit", ErrAddress, s, p[12-2*i:14-2*i])
		}
		a[i] = hi<<4 | lo
	}
	return a, nil
}

func hexNibble(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// String returns the 14 digits, high first, in upper case.
func (a Address) String() string {
	var b strings.Builder
	for i := 6; i >= 0; i-- {
		fmt.Fprintf(&b, "%02X", a[i])
	}
	return b.String()
}

// Matches reports whether a reply from r answers a request sent to a: AA
// bytes of a match anything.
func (a Address) Matches(r Address) bool {
	for i := range a {
		if a[i] != 0xAA && a[i] != r[i] {
			return false
		}
	}
	return true
}

// Frame is one CJ/T 188 frame. Unlike DL/T 645, DATA has no +0x33 offset.
type Frame struct {
	// Preamble is the number of FE bytes: sent by Encode, counted by Decode.
	Preamble int
	Type     byte // meter type T
	Addr     Address
	Control  byte
	Data     []byte
}

// IsReply reports D7.
func (f Frame) IsReply() bool { return f.Control&CtrlReply != 0 }

// IsAbnormal reports D6.
func (f Frame) IsAbnormal() bool { return f.Control&CtrlAbnormal != 0 }

// Function returns D5..D0.
func (f Frame) Function() byte { return f.Control & FuncMask }

// Err returns nil for a normal frame and an *AbnormalError for an abnormal
// reply.
func (f Frame) Err() error {
	if !f.IsReply() || !f.IsAbnormal() {
		return nil
	}
	e := &AbnormalError{Control: f.Control}
	switch {
	case len(f.Data) >= 4: // DI(2) SER ST [unsure: exact layout]
		e.Status = f.Data[3]
	case len(f.Data) > 0:
		e.Status = f.Data[len(f.Data)-1]
	}
	return e
}

// Encode returns Preamble × FE, 68, T, address, C, L, DATA, CS, 16. DATA
// longer than 255 bytes is cut.
func Encode(f Frame) []byte {
	data := f.Data
	if len(data) > 255 {
		data = data[:255]
	}
	pre := max(f.Preamble, 0)
	b := make([]byte, 0, pre+minFrame+len(data))
	for range pre {
		b = append(b, preambleByte)
	}
	start := len(b)
	b = append(b, startByte, f.Type)
	b = append(b, f.Addr[:]...)
	b = append(b, f.Control, byte(len(data)))
	b = append(b, data...)
	b = append(b, checksum(b[start:]), endByte)
	return b
}

func checksum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

// Decode parses exactly one frame, optionally preceded by FE bytes.
// Errors: ErrShort, ErrStart, ErrLength, ErrChecksum, ErrEnd.
func Decode(b []byte) (Frame, error) {
	var f Frame
	for f.Preamble < len(b) && b[f.Preamble] == preambleByte {
		f.Preamble++
	}
	b = b[f.Preamble:]
	if len(b) < minFrame {
		return Frame{}, fmt.Errorf("%w: %d bytes after the preamble, a frame has at least %d", ErrShort, len(b), minFrame)
	}
	if b[0] != startByte {
		return Frame{}, fmt.Errorf("%w: first byte %02X, want 68", ErrStart, b[0])
	}
	l := int(b[10])
	if len(b) < minFrame+l {
		return Frame{}, fmt.Errorf("%w: L=%d needs %d bytes, have %d", ErrShort, l, minFrame+l, len(b))
	}
	if len(b) > minFrame+l {
		return Frame{}, fmt.Errorf("%w: L=%d gives a %d-byte frame, have %d bytes", ErrLength, l, minFrame+l, len(b))
	}
	if cs, want := b[headerLen+l], checksum(b[:headerLen+l]); cs != want {
		return Frame{}, fmt.Errorf("%w: got %02X, want %02X", ErrChecksum, cs, want)
	}
	if e := b[headerLen+l+1]; e != endByte {
		return Frame{}, fmt.Errorf("%w: got %02X, want 16", ErrEnd, e)
	}
	f.Type = b[1]
	copy(f.Addr[:], b[2:9])
	f.Control = b[9]
	f.Data = bytes.Clone(b[headerLen : headerLen+l])
	if f.Data == nil {
		f.Data = []byte{}
	}
	return f, nil
}

// Split is a serialio.SplitFunc for CJ/T 188: it skips FE bytes and noise
// before a 68, returns one whole frame with a good checksum and end byte,
// and skips one byte to re-synchronise after a false start. It never
// returns an error.
func Split(buf []byte) (skip, n int, err error) {
	return serialio.Resync(buf, startByte, frameAt)
}

func frameAt(b []byte) (n int, bad bool) {
	if len(b) < headerLen {
		return 0, false
	}
	l := int(b[10])
	if len(b) < minFrame+l {
		return 0, false
	}
	if b[headerLen+l] != checksum(b[:headerLen+l]) || b[headerLen+l+1] != endByte {
		return 0, true
	}
	return minFrame + l, false
}
