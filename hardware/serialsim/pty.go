// Package serialsim provides serial lines for simulators and tests:
// pseudo-terminal pairs (a real kernel tty that the gateway opens with the
// ordinary serial backend), linked PTY pairs (a virtual null-modem cable
// between two programs), and byte-exact scripted exchanges for unit tests.
package serialsim

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/townlink/townlink/hardware"
)

// PTY is a pseudo-terminal. The simulator reads and writes the master side
// through the PTY itself (it implements hardware.Port); the gateway opens
// Path, the slave side, like any serial device.
type PTY struct {
	master *os.File
	slave  *os.File // kept open so the master never sees EIO/hang-up while the gateway reconnects

	mu      sync.Mutex
	timeout time.Duration
	path    string
}

var _ hardware.Port = (*PTY)(nil)

// OpenPTY allocates a pseudo-terminal with its slave in raw mode (no echo,
// no CR/LF translation, 8 bits), so every byte passes unchanged.
func OpenPTY() (*PTY, error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("serialsim: open /dev/ptmx: %w", err)
	}
	var n uint32
	var ierr error
	cerr := rawControl(m, func(fd int) {
		if ierr = unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); ierr != nil {
			return
		}
		n, ierr = unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	})
	if err := errors.Join(cerr, ierr); err != nil {
		m.Close()
		return nil, fmt.Errorf("serialsim: unlock pty: %w", err)
	}
	path := "/dev/pts/" + strconv.Itoa(int(n))
	s, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("serialsim: open %s: %w", path, err)
	}
	if err := makeRaw(s); err != nil {
		m.Close()
		s.Close()
		return nil, fmt.Errorf("serialsim: raw mode on %s: %w", path, err)
	}
	return &PTY{master: m, slave: s, path: path}, nil
}

// Path is the slave device, e.g. /dev/pts/7.
func (p *PTY) Path() string { return p.path }

// Read reads from the master side; a timeout is (0, err) with
// errors.Is(err, os.ErrDeadlineExceeded).
func (p *PTY) Read(b []byte) (int, error) {
	p.mu.Lock()
	d := p.timeout
	p.mu.Unlock()
	var dl time.Time
	if d > 0 {
		dl = time.Now().Add(d)
	}
	if err := p.master.SetReadDeadline(dl); err != nil {
		return 0, err
	}
	return p.master.Read(b)
}

// Write writes to the master side: the bytes arrive at whoever opened Path.
func (p *PTY) Write(b []byte) (int, error) { return p.master.Write(b) }

// SetReadTimeout bounds each Read; d <= 0 blocks.
func (p *PTY) SetReadTimeout(d time.Duration) error {
	p.mu.Lock()
	p.timeout = d
	p.mu.Unlock()
	return nil
}

// Flush drops input not yet read by the master side.
func (p *PTY) Flush() error {
	var ierr error
	err := rawControl(p.master, func(fd int) { ierr = unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIFLUSH) })
	return errors.Join(err, ierr)
}

// Close releases both sides.
func (p *PTY) Close() error {
	return errors.Join(p.master.Close(), p.slave.Close())
}

func rawControl(f *os.File, fn func(fd int)) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { fn(int(fd)) })
}

func makeRaw(f *os.File) error {
	var ierr error
	err := rawControl(f, func(fd int) {
		t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			ierr = err
			return
		}
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
		t.Cc[unix.VMIN] = 1
		t.Cc[unix.VTIME] = 0
		ierr = unix.IoctlSetTermios(fd, unix.TCSETS, t)
	})
	return errors.Join(err, ierr)
}

// Link is a virtual null-modem cable: two PTYs whose master sides are
// copied into each other, so a program on A.Path() talks to a program on
// B.Path() (like `socat pty pty`).
type Link struct {
	A, B *PTY
	wg   sync.WaitGroup
}

// NewLink opens two PTYs and starts copying between them until Close.
func NewLink() (*Link, error) {
	a, err := OpenPTY()
	if err != nil {
		return nil, err
	}
	b, err := OpenPTY()
	if err != nil {
		a.Close()
		return nil, err
	}
	l := &Link{A: a, B: b}
	l.wg.Add(2)
	go l.copy(a, b)
	go l.copy(b, a)
	return l, nil
}

func (l *Link) copy(dst, src *PTY) {
	defer l.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, err := src.master.Read(buf)
		if n > 0 {
			if _, werr := dst.master.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Close closes both PTYs and waits for the copiers.
func (l *Link) Close() error {
	err := errors.Join(l.A.Close(), l.B.Close())
	l.wg.Wait()
	return err
}
