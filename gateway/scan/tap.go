package scan

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/townlink/townlink/hardware"
)

// Tap is a Port that writes every request and reply to w in hex:
//
//	> FE FE FE FE 68 01 00 07 12 26 20 68 11 04 33 33 34 33 D5 16
//	< FE FE FE FE 68 01 00 07 12 26 20 68 91 08 33 33 34 33 AB 89 67 45 8F 16
//
// Reply bytes are gathered until the next write, Flush or End, so one
// line holds one reply however the port delivered it.
type Tap struct {
	p  hardware.Port
	w  io.Writer
	mu sync.Mutex
	in []byte
}

var _ hardware.Port = (*Tap)(nil)

// NewTap taps p.
func NewTap(p hardware.Port, w io.Writer) *Tap { return &Tap{p: p, w: w} }

// Write logs pending reply bytes, then b, and writes b.
func (t *Tap) Write(b []byte) (int, error) {
	t.mu.Lock()
	t.endLocked()
	fmt.Fprintf(t.w, "> % X\n", b)
	t.mu.Unlock()
	return t.p.Write(b)
}

// Read reads and keeps what came for the log.
func (t *Tap) Read(b []byte) (int, error) {
	n, err := t.p.Read(b)
	if n > 0 {
		t.mu.Lock()
		t.in = append(t.in, b[:n]...)
		t.mu.Unlock()
	}
	return n, err
}

// SetReadTimeout passes through.
func (t *Tap) SetReadTimeout(d time.Duration) error { return t.p.SetReadTimeout(d) }

// Flush logs the reply bytes read so far and drops unread input.
func (t *Tap) Flush() error {
	t.End()
	return t.p.Flush()
}

// End writes the reply bytes read since the last request.
func (t *Tap) End() {
	t.mu.Lock()
	t.endLocked()
	t.mu.Unlock()
}

func (t *Tap) endLocked() {
	if len(t.in) > 0 {
		fmt.Fprintf(t.w, "< % X\n", t.in)
		t.in = t.in[:0]
	}
}
