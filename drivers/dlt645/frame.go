package dlt645

import (
	"bytes"
	"fmt"
	"github.com/townlink/townlink/drivers/serialio"
	"strings"
)

// Frame bytes.
const (
	preambleByte = 0xFE
	startByte    = 0x68
	endByte      = 0x16
	offset33     = 0x33
	headerLen    = 10 // 68 A0..A5 68 C L
	minFrame     = 12 // header + CS + 16
)

// Control-code bits and function codes (DL/T 645-2007 §7.1; 1997 §4.2).
const (
	CtrlReply    = 0x80 // D7: 1 = meter → master
	CtrlAbnormal = 0x40 // D6: abnormal reply, DATA is the error byte
	CtrlFollow   = 0x20 // D5: more frames follow
	FuncMask     = 0x1F // D4..D0: function

	FuncBroadcastTime = 0x08 // broadcast time sync (both versions), no reply
	FuncRead          = 0x11 // 2007 read data
	FuncReadFollow    = 0x12 // 2007 read follow-up data (DI + SEQ)
	FuncReadAddress   = 0x13 // 2007 read communication address
	FuncWrite         = 0x14 // 2007 write data
	Func97Read        = 0x01 // 1997 read data
	Func97ReadFollow  = 0x02 // 1997 read follow-up data
	Func97Write       = 0x04 // 1997 write data
)

// Length limits of DATA (DL/T 645-2007 §7.1: read L ≤ 200, write L ≤ 50).
const (
	MaxData      = 200
	MaxWriteData = 50
)

// Address is a meter address as sent on the wire: A0 (lowest two digits)
// first. Its String is the 12 digits high first, as printed on the meter.
// Bytes that are not BCD are kept as they are (e.g. 3A2107000481).
type Address [6]byte

// Addresses with a meaning of their own.
const (
	WildcardAddress  = "AAAAAAAAAAAA" // any meter (one meter on the bus); AA high bytes = short addressing
	BroadcastAddress = "999999999999" // every meter, no reply (0x08 time sync)
)

// ParseAddress reads an address written high digit first, e.g.
// "218231000114". Fewer than 12 digits are padded with 0 at the high end.
// Hex digits A-F are accepted so that wildcard bytes (AA) and non-BCD
// addresses seen in the field can be written.
func ParseAddress(s string) (Address, error) {
	var a Address
	if s == "" || len(s) > 12 {
		return a, fmt.Errorf("%w: %q has %d digits, want 1 to 12", ErrAddress, s, len(s))
	}
	p := strings.Repeat("0", 12-len(s)) + s
	for i := range 6 {
		hi, ok1 := hexNibble(p[10-2*i])
		lo, ok2 := hexNibble(p[11-2*i])
		if !ok1 || !ok2 {
			return Address{}, fmt.Errorf("%w: %q: %q is not a digit", ErrAddress, s, p[10-2*i:12-2*i])
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

// String returns the 12 digits, high first, in upper case.
func (a Address) String() string {
	var b strings.Builder
	for i := 5; i >= 0; i-- {
		fmt.Fprintf(&b, "%02X", a[i])
	}
	return b.String()
}

// IsBroadcast reports the broadcast address 999999999999.
func (a Address) IsBroadcast() bool { return a == Address{0x99, 0x99, 0x99, 0x99, 0x99, 0x99} }

// IsWildcard reports whether any byte is the wildcard AA (full or short
// addressing).
func (a Address) IsWildcard() bool { return bytes.IndexByte(a[:], 0xAA) >= 0 }

// Matches reports whether a reply from address r answers a request sent to
// a: equal bytes, where an AA byte of a matches anything.
func (a Address) Matches(r Address) bool {
	for i := range a {
		if a[i] != 0xAA && a[i] != r[i] {
			return false
		}
	}
	return true
}

// Frame is one DL/T 645 frame. Data is the plain payload: Encode adds
// 0x33 to each byte and Decode subtracts it.
type Frame struct {
	// Preamble is the number of FE wake-up bytes: sent by Encode, counted
	// by Decode. They are not part of the checksum.
	Preamble int
	Addr     Address
	Control  byte
	Data     []byte
}

// IsReply reports D7 (meter → master).
func (f Frame) IsReply() bool { return f.Control&CtrlReply != 0 }

// IsAbnormal reports D6 (abnormal reply).
func (f Frame) IsAbnormal() bool { return f.Control&CtrlAbnormal != 0 }

// HasFollowUp reports D5 (more frames follow).
func (f Frame) HasFollowUp() bool { return f.Control&CtrlFollow != 0 }

// Function returns D4..D0.
func (f Frame) Function() byte { return f.Control & FuncMask }

// Err returns nil for a normal frame and an *AbnormalError for an abnormal
// reply (its error byte is Data[0]).
func (f Frame) Err() error {
	if !f.IsReply() || !f.IsAbnormal() {
		return nil
	}
	e := &AbnormalError{Control: f.Control}
	if len(f.Data) > 0 {
		e.Bits = f.Data[0]
	}
	return e
}

// Validate checks the limits Encode does not: L ≤ 200, and L ≤ 50 for a
// write request.
func (f Frame) Validate() error {
	return checkLength(f.Control, len(f.Data))
}

func checkLength(control byte, l int) error {
	if l > MaxData {
		return fmt.Errorf("%w: L=%d, at most %d", ErrLength, l, MaxData)
	}
	if control&CtrlReply == 0 {
		if fn := control & FuncMask; (fn == FuncWrite || fn == Func97Write) && l > MaxWriteData {
			return fmt.Errorf("%w: write request with L=%d, at most %d", ErrLength, l, MaxWriteData)
		}
	}
	return nil
}

// Encode returns the frame's bytes: Preamble × FE, 68, address, 68, C, L,
// DATA + 0x33, CS, 16. It does not check limits (see Validate); DATA
// longer than 255 bytes is not representable and is cut.
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
	b = append(b, startByte)
	b = append(b, f.Addr[:]...)
	b = append(b, startByte, f.Control, byte(len(data)))
	for _, d := range data {
		b = append(b, d+offset33)
	}
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
// Errors name what is wrong: ErrShort, ErrStart, ErrLength, ErrChecksum,
// ErrEnd. An abnormal reply decodes without error; see Frame.Err.
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
	if b[7] != startByte {
		return Frame{}, fmt.Errorf("%w: byte 7 is %02X, want the second 68", ErrStart, b[7])
	}
	l := int(b[9])
	if err := checkLength(b[8], l); err != nil {
		return Frame{}, err
	}
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
	copy(f.Addr[:], b[1:7])
	f.Control = b[8]
	f.Data = make([]byte, l)
	for i := range l {
		f.Data[i] = b[headerLen+i] - offset33
	}
	return f, nil
}

// Split is a serialio.SplitFunc for DL/T 645 (both versions): it skips FE
// bytes and noise before a 68, returns one whole frame with a good
// checksum and end byte, and skips one byte to re-synchronise after a
// false start. It never returns an error.
func Split(buf []byte) (skip, n int, err error) {
	return serialio.Resync(buf, startByte, frameAt)
}

// frameAt checks the frame starting at b[0] == 68: its length if whole and
// valid, bad if it cannot be one, (0, false) if more bytes are needed.
func frameAt(b []byte) (n int, bad bool) {
	if len(b) < headerLen {
		return 0, false
	}
	if b[7] != startByte {
		return 0, true
	}
	l := int(b[9])
	if checkLength(b[8], l) != nil {
		return 0, true
	}
	if len(b) < minFrame+l {
		return 0, false
	}
	if b[headerLen+l] != checksum(b[:headerLen+l]) || b[headerLen+l+1] != endByte {
		return 0, true
	}
	return minFrame + l, false
}
