package serialsim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/townlink/townlink/hardware"
)

// ErrMultidropStopped is what an attached port's Read returns once the
// Multidrop's Run has ended: no more line traffic will arrive.
var ErrMultidropStopped = errors.New("serialsim: multidrop stopped")

// dropInputLimit bounds what an attached port buffers when its device does
// not read: like a UART overrun, the oldest bytes are lost first.
const dropInputLimit = 64 << 10

// multidropPoll is how often Run looks at its context while the line is quiet.
const multidropPoll = 50 * time.Millisecond

// Multidrop is one RS-485 line shared by many simulated devices. On a real
// bus every transceiver hears every byte the master sends; here one reader
// (Run) copies every chunk read from the line into the input of every
// attached port, and the attached ports' writes go to the line one write
// call at a time (a write is never interleaved with another).
//
// What one device writes reaches the master only, not the other attached
// devices (on a real bus they would hear it too; devices must in any case
// ignore frames that are not requests to them).
type Multidrop struct {
	line hardware.Port
	wmu  sync.Mutex // serializes writes to the line

	mu      sync.Mutex
	ports   []*dropPort
	stopped error // set once Run returns
}

// NewMultidrop shares line (for example the master side of a PTY) among
// the ports that Attach returns. Nothing happens until Run.
func NewMultidrop(line hardware.Port) *Multidrop {
	return &Multidrop{line: line}
}

// Attach returns a new port that sees all line traffic from now on, with
// its own read timeout and Flush. One goroutine should read it at a time.
// Attach may be called before or while Run runs.
func (m *Multidrop) Attach() hardware.Port {
	p := &dropPort{m: m, wake: make(chan struct{}, 1)}
	m.mu.Lock()
	p.stopped = m.stopped
	m.ports = append(m.ports, p)
	m.mu.Unlock()
	return p
}

// Run copies line input to every attached port until ctx ends (it then
// returns nil) or reading the line fails (it returns that error). Either
// way the attached ports' Reads then return ErrMultidropStopped once their
// buffered input is drained. Run sets the line's read timeout; call it once.
func (m *Multidrop) Run(ctx context.Context) error {
	if err := m.line.SetReadTimeout(multidropPoll); err != nil {
		m.stop()
		return fmt.Errorf("serialsim: multidrop: set line timeout: %w", err)
	}
	buf := make([]byte, 4096)
	for ctx.Err() == nil {
		n, err := m.line.Read(buf)
		if n > 0 {
			m.deliver(buf[:n])
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			m.stop()
			return fmt.Errorf("serialsim: multidrop: read line: %w", err)
		}
	}
	m.stop()
	return nil
}

func (m *Multidrop) deliver(b []byte) {
	m.mu.Lock()
	ports := m.ports
	m.mu.Unlock()
	for _, p := range ports {
		p.put(b)
	}
}

func (m *Multidrop) stop() {
	m.mu.Lock()
	m.stopped = ErrMultidropStopped
	ports := m.ports
	m.mu.Unlock()
	for _, p := range ports {
		p.mu.Lock()
		p.stopped = ErrMultidropStopped
		p.mu.Unlock()
		p.signal()
	}
}

// dropPort is one device's tap on the shared line.
type dropPort struct {
	m    *Multidrop
	wake chan struct{} // capacity 1: "input arrived or the line stopped"

	mu      sync.Mutex
	in      []byte
	timeout time.Duration
	stopped error
}

var _ hardware.Port = (*dropPort)(nil)

func (p *dropPort) put(b []byte) {
	p.mu.Lock()
	p.in = append(p.in, b...)
	if over := len(p.in) - dropInputLimit; over > 0 {
		p.in = append(p.in[:0], p.in[over:]...)
	}
	p.mu.Unlock()
	p.signal()
}

func (p *dropPort) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Read returns line bytes not yet read by this port. A timeout is (0, err)
// with errors.Is(err, os.ErrDeadlineExceeded).
func (p *dropPort) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	p.mu.Lock()
	d := p.timeout
	p.mu.Unlock()
	var timer <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	for {
		p.mu.Lock()
		if len(p.in) > 0 {
			n := copy(b, p.in)
			p.in = append(p.in[:0], p.in[n:]...)
			p.mu.Unlock()
			return n, nil
		}
		stopped := p.stopped
		p.mu.Unlock()
		if stopped != nil {
			return 0, stopped
		}
		select {
		case <-p.wake:
		case <-timer:
			return 0, fmt.Errorf("serialsim: multidrop read: %w", os.ErrDeadlineExceeded)
		}
	}
}

// Write sends b to the line as one uninterrupted write.
func (p *dropPort) Write(b []byte) (int, error) {
	p.m.wmu.Lock()
	defer p.m.wmu.Unlock()
	return p.m.line.Write(b)
}

// SetReadTimeout bounds each following Read; d <= 0 blocks.
func (p *dropPort) SetReadTimeout(d time.Duration) error {
	p.mu.Lock()
	p.timeout = d
	p.mu.Unlock()
	return nil
}

// Flush drops this port's unread input; the other ports keep theirs.
func (p *dropPort) Flush() error {
	p.mu.Lock()
	p.in = p.in[:0]
	p.mu.Unlock()
	return nil
}
