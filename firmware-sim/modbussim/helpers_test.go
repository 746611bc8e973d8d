package modbussim

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/hardware"
)

// memPort is an in-memory hardware.Port for the slave: Read hands out the
// queued input chunks, then reports one idle timeout, then io.EOF so that
// Serve returns; Write records the replies.
type memPort struct {
	mu     sync.Mutex
	chunks [][]byte
	idled  bool
	out    []byte
	writes int
}

func newMemPort(chunks ...[]byte) *memPort { return &memPort{chunks: chunks} }

func (m *memPort) Read(b []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(m.chunks) > 0 {
		c := m.chunks[0]
		n := copy(b, c)
		if n == len(c) {
			m.chunks = m.chunks[1:]
		} else {
			m.chunks[0] = c[n:]
		}
		if n > 0 {
			return n, nil
		}
	}
	if !m.idled {
		m.idled = true
		return 0, os.ErrDeadlineExceeded
	}
	return 0, io.EOF
}

func (m *memPort) Write(b []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.out = append(m.out, b...)
	m.writes++
	return len(b), nil
}

func (m *memPort) SetReadTimeout(time.Duration) error { return nil }
func (m *memPort) Flush() error                       { return nil }

var _ hardware.Port = (*memPort)(nil)

var (
	mode9600 = hardware.Mode{Baud: 9600}
	modeZero hardware.Mode
)

// serveMem runs b over the given input until the input ends and returns
// what it wrote.
func serveMem(t testing.TB, b *Bus, chunks ...[]byte) *memPort {
	t.Helper()
	p := newMemPort(chunks...)
	if err := b.Serve(context.Background(), p); !errors.Is(err, io.EOF) {
		t.Fatalf("Serve over memory: %v, want io.EOF at the end of input", err)
	}
	return p
}
