package serialsim

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/townlink/townlink/hardware"
)

// PeerBaud is the baud rate the program on the slave side set (on Linux a
// termios request on the master reads the slave's settings). A PTY keeps
// no parity: the kernel clears PARENB, so only the rate can be checked.
func (p *PTY) PeerBaud() (int, error) {
	var t *unix.Termios
	var ierr error
	err := rawControl(p.master, func(fd int) { t, ierr = unix.IoctlGetTermios(fd, unix.TCGETS2) })
	if err := errors.Join(err, ierr); err != nil {
		return 0, fmt.Errorf("serialsim: read %s settings: %w", p.path, err)
	}
	return int(t.Ispeed), nil
}

// BaudGate is the device side of a PTY whose devices listen at one baud
// rate: bytes the master sends while its port is set to another rate
// arrive as 0xFF, as a UART at the wrong rate sees framing garbage, so a
// simulator on it answers only a master at the right rate. Give it to the
// simulator (or a Multidrop) instead of the PTY.
type BaudGate struct {
	pty  *PTY
	baud int
}

var _ hardware.Port = (*BaudGate)(nil)

// NewBaudGate gates p at baud.
func NewBaudGate(p *PTY, baud int) *BaudGate { return &BaudGate{pty: p, baud: baud} }

// Read reads what the master sent, garbled if it was sent at another rate.
func (g *BaudGate) Read(b []byte) (int, error) {
	n, err := g.pty.Read(b)
	if n > 0 {
		if baud, berr := g.pty.PeerBaud(); berr != nil || baud != g.baud {
			for i := range b[:n] {
				b[i] = 0xFF
			}
		}
	}
	return n, err
}

// Write sends to the master.
func (g *BaudGate) Write(b []byte) (int, error) { return g.pty.Write(b) }

// SetReadTimeout sets the PTY's read timeout.
func (g *BaudGate) SetReadTimeout(d time.Duration) error { return g.pty.SetReadTimeout(d) }

// Flush drops unread input.
func (g *BaudGate) Flush() error { return g.pty.Flush() }
