// Package hardware defines the small interfaces the drivers see: an open
// serial line (Port) and its settings (Mode). It imports only the standard
// library; backends live in sub-packages (serial, serialsim, gpio, board).
package hardware

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Port is one open serial line.
//
// A read that times out returns (0, err) with
// errors.Is(err, os.ErrDeadlineExceeded); it never returns (0, nil).
type Port interface {
	io.ReadWriter
	// SetReadTimeout bounds every following Read. Zero or negative means
	// block until data arrives.
	SetReadTimeout(d time.Duration) error
	// Flush drops unread input, e.g. a late reply to an earlier request.
	Flush() error
}

// Parity of a serial character.
type Parity uint8

// Parity values.
const (
	ParityNone Parity = iota
	ParityEven
	ParityOdd
)

func (p Parity) String() string {
	switch p {
	case ParityNone:
		return "none"
	case ParityEven:
		return "even"
	case ParityOdd:
		return "odd"
	}
	return fmt.Sprintf("Parity(%d)", uint8(p))
}

// ParseParity accepts none, even or odd.
func ParseParity(s string) (Parity, error) {
	switch s {
	case "none", "n", "N":
		return ParityNone, nil
	case "even", "e", "E":
		return ParityEven, nil
	case "odd", "o", "O":
		return ParityOdd, nil
	}
	return 0, fmt.Errorf("%w: parity %q (want none, even or odd)", ErrMode, s)
}

// Mode is the framing of a serial line.
type Mode struct {
	Baud     int
	DataBits int // 0 means 8
	Parity   Parity
	StopBits int // 1 or 2; 0 means 1
}

// ErrMode reports an unusable serial mode.
var ErrMode = errors.New("hardware: bad serial mode")

// Validate checks the mode.
func (m Mode) Validate() error {
	if m.Baud <= 0 || m.Baud > 4_000_000 {
		return fmt.Errorf("%w: baud %d (want e.g. 1200, 2400, 9600)", ErrMode, m.Baud)
	}
	if d := m.dataBits(); d < 5 || d > 8 {
		return fmt.Errorf("%w: data bits %d (want 5..8)", ErrMode, d)
	}
	if m.Parity > ParityOdd {
		return fmt.Errorf("%w: parity %d", ErrMode, m.Parity)
	}
	if s := m.stopBits(); s != 1 && s != 2 {
		return fmt.Errorf("%w: stop bits %d (want 1 or 2)", ErrMode, s)
	}
	return nil
}

func (m Mode) dataBits() int {
	if m.DataBits == 0 {
		return 8
	}
	return m.DataBits
}

func (m Mode) stopBits() int {
	if m.StopBits == 0 {
		return 1
	}
	return m.StopBits
}

// CharBits is the number of bits one character takes on the wire:
// start bit, data bits, parity bit if any, stop bits.
func (m Mode) CharBits() int {
	n := 1 + m.dataBits() + m.stopBits()
	if m.Parity != ParityNone {
		n++
	}
	return n
}

// CharTime is the time one character takes on the wire.
func (m Mode) CharTime() time.Duration {
	if m.Baud <= 0 {
		return 0
	}
	return time.Duration(int64(m.CharBits()) * int64(time.Second) / int64(m.Baud))
}

// WireTime is the time n bytes take on the wire.
func (m Mode) WireTime(n int) time.Duration {
	if m.Baud <= 0 {
		return 0
	}
	return time.Duration(int64(n) * int64(m.CharBits()) * int64(time.Second) / int64(m.Baud))
}

func (m Mode) String() string {
	p := "N"
	switch m.Parity {
	case ParityEven:
		p = "E"
	case ParityOdd:
		p = "O"
	}
	return fmt.Sprintf("%d %d%s%d", m.Baud, m.dataBits(), p, m.stopBits())
}
