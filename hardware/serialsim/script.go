package serialsim

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/hardware"
)

// Step is one scripted exchange: when the code under test has written
// exactly Expect, Reply becomes readable (nil Reply: the device stays
// silent and the next Read times out).
type Step struct {
	Expect []byte
	Reply  []byte
}

// Script is an in-process hardware.Port that plays a byte-exact exchange
// for unit tests. A write that differs from the script, or steps left over
// when the test ends, fail the test.
type Script struct {
	t     testing.TB
	mu    sync.Mutex
	steps []Step
	got   []byte
	out   []byte
}

var _ hardware.Port = (*Script)(nil)

// NewScript returns a port that plays steps in order.
func NewScript(t testing.TB, steps ...Step) *Script {
	s := &Script{t: t, steps: steps}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.steps) > 0 {
			t.Errorf("serialsim: %d scripted steps left over; next expects % X", len(s.steps), s.steps[0].Expect)
		}
		if len(s.got) > 0 {
			t.Errorf("serialsim: unexpected trailing write % X", s.got)
		}
	})
	return s
}

// Write records what the code under test sent.
func (s *Script) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, b...)
	if len(s.steps) == 0 {
		s.t.Errorf("serialsim: write % X after the script ended", s.got)
		s.got = nil
		return len(b), nil
	}
	want := s.steps[0].Expect
	if !bytes.HasPrefix(want, s.got) {
		s.t.Errorf("serialsim: wrote % X, script expects % X", s.got, want)
		s.got = nil
		s.steps = s.steps[1:]
		return len(b), nil
	}
	if len(s.got) == len(want) {
		s.out = append(s.out, s.steps[0].Reply...)
		s.steps = s.steps[1:]
		s.got = nil
	}
	return len(b), nil
}

// Read returns scripted reply bytes, or a timeout error when none are due.
func (s *Script) Read(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.out) == 0 {
		return 0, fmt.Errorf("serialsim: script: %w", os.ErrDeadlineExceeded)
	}
	n := copy(b, s.out)
	s.out = s.out[n:]
	return n, nil
}

// SetReadTimeout is accepted and ignored: a script answers at once.
func (s *Script) SetReadTimeout(time.Duration) error { return nil }

// Flush drops reply bytes not yet read.
func (s *Script) Flush() error {
	s.mu.Lock()
	s.out = nil
	s.mu.Unlock()
	return nil
}
