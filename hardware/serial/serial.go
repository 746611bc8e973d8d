// Package serial is the go.bug.st/serial backend of hardware.Port: it opens
// a real serial device (or a PTY slave) and turns the library's (0, nil)
// read timeout into an error wrapping os.ErrDeadlineExceeded.
package serial

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	bug "go.bug.st/serial"

	"github.com/townlink/townlink/hardware"
)

// ErrOpen reports a serial device that could not be opened.
var ErrOpen = errors.New("serial: cannot open port")

// ErrInUse reports a serial device another Port holds open (a running
// gateway, a townlink read or scan): two masters on one RS-485 line
// garble each other's frames.
var ErrInUse = errors.New("in use")

// Port is an open serial device.
type Port struct {
	path string
	p    bug.Port
	lock *os.File // holds the flock that keeps a second Port off the device
}

var _ hardware.Port = (*Port)(nil)

// Open opens path with mode m. The read timeout starts at "block".
func Open(path string, m hardware.Mode) (*Port, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("serial %s: %w", path, err)
	}
	mode := &bug.Mode{BaudRate: m.Baud, DataBits: 8, Parity: bug.NoParity, StopBits: bug.OneStopBit}
	if m.DataBits != 0 {
		mode.DataBits = m.DataBits
	}
	switch m.Parity {
	case hardware.ParityEven:
		mode.Parity = bug.EvenParity
	case hardware.ParityOdd:
		mode.Parity = bug.OddParity
	}
	if m.StopBits == 2 {
		mode.StopBits = bug.TwoStopBits
	}
	// Lock before bug.Open: a second open would set the line's baud and
	// framing under the process that holds it (root is not kept out by
	// the library's TIOCEXCL).
	lock, err := lockDevice(path)
	if err != nil {
		return nil, err
	}
	p, err := bug.Open(path, mode)
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		hint := ""
		if _, serr := os.Stat(path); errors.Is(serr, os.ErrNotExist) {
			hint = " (no such device: check the cable/USB adapter, or `townlink ports` for what exists)"
		} else if errors.Is(serr, os.ErrPermission) || isPermission(err) {
			hint = " (permission denied: add the service user to the dialout group)"
		}
		return nil, fmt.Errorf("%w %s at %s: %v%s", ErrOpen, path, m, err, hint)
	}
	return &Port{path: path, p: p, lock: lock}, nil
}

// lockDevice takes an exclusive flock on path, refusing a device another
// Port holds. A path that cannot be opened for the lock is left to
// bug.Open to report (nil, nil).
func lockDevice(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w %s: %w by another program (a running gateway, townlink read or scan: `fuser -v %s` names it; stop it, or give -c the running gateway's config to go through it)", ErrOpen, path, ErrInUse, path)
		}
		return nil, nil // no flock on this file system: no lock, as before
	}
	return f, nil
}

func isPermission(err error) bool {
	var pe *bug.PortError
	if errors.As(err, &pe) {
		return pe.Code() == bug.PermissionDenied
	}
	return false
}

// Path is the device path the port was opened with.
func (p *Port) Path() string { return p.path }

// Read reads what has arrived. A timeout is (0, err) with
// errors.Is(err, os.ErrDeadlineExceeded).
func (p *Port) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, err := p.p.Read(b)
	if err != nil {
		return n, fmt.Errorf("serial %s: read: %w", p.path, err)
	}
	if n == 0 {
		return 0, fmt.Errorf("serial %s: read: %w", p.path, os.ErrDeadlineExceeded)
	}
	return n, nil
}

// Write writes b and waits until it has been handed to the device.
func (p *Port) Write(b []byte) (int, error) {
	n, err := p.p.Write(b)
	if err != nil {
		return n, fmt.Errorf("serial %s: write: %w", p.path, err)
	}
	return n, nil
}

// SetReadTimeout bounds each Read; d <= 0 blocks.
func (p *Port) SetReadTimeout(d time.Duration) error {
	if d <= 0 {
		d = bug.NoTimeout
	}
	if err := p.p.SetReadTimeout(d); err != nil {
		return fmt.Errorf("serial %s: set timeout: %w", p.path, err)
	}
	return nil
}

// Flush drops unread input.
func (p *Port) Flush() error {
	if err := p.p.ResetInputBuffer(); err != nil {
		return fmt.Errorf("serial %s: flush: %w", p.path, err)
	}
	return nil
}

// Close closes the device (and then lets another Port have it).
func (p *Port) Close() error {
	err := p.p.Close()
	if p.lock != nil {
		p.lock.Close()
	}
	return err
}

// List returns the serial devices the system knows.
func List() ([]string, error) { return bug.GetPortsList() }
