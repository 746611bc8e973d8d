package testkit

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serial"
	"github.com/townlink/townlink/hardware/serialsim"
)

// ReplyTimeout bounds the wait for the first byte of a reply (ReadReply)
// and for any read helper as a whole: generous, so that a loaded machine
// makes a test slow, not wrong.
const ReplyTimeout = 10 * time.Second

// ServePTY runs every serve on the simulator side of one fresh PTY until
// the test ends (several serves share it through a serialsim.Multidrop, as
// devices on one RS-485 line) and returns the PTY's device path: what a
// gateway opens. A serve that returns an error fails the test; the test's
// cleanup stops and waits for every one.
func ServePTY(t testing.TB, serve ...func(ctx context.Context, p hardware.Port) error) string {
	t.Helper()
	pty, err := serialsim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	run := func(name string, f func() error) {
		wg.Go(func() {
			if err := f(); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		})
	}
	if len(serve) == 1 {
		run("serve", func() error { return serve[0](ctx, pty) })
	} else {
		md := serialsim.NewMultidrop(pty)
		for _, s := range serve {
			p := md.Attach()
			run("serve", func() error { return s(ctx, p) })
		}
		run("multidrop", func() error { return md.Run(ctx) })
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		pty.Close()
	})
	return pty.Path()
}

// OpenServedPTY is ServePTY with the gateway's side opened at mode through
// the real serial backend, as the gateway opens a port; it is closed when
// the test ends.
func OpenServedPTY(t testing.TB, mode hardware.Mode, serve ...func(ctx context.Context, p hardware.Port) error) *serial.Port {
	t.Helper()
	path := ServePTY(t, serve...)
	gw, err := serial.Open(path, mode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	return gw
}

// ReadQuiet collects what p receives until nothing has come for quiet (so
// an empty result says nothing came for that long).
func ReadQuiet(t testing.TB, p hardware.Port, quiet time.Duration) []byte {
	t.Helper()
	got, _ := read(t, p, 0, quiet)
	return got
}

// ReadReply waits up to ReplyTimeout for the first byte of a reply, then
// collects until nothing has come for gap. No reply fails the test.
func ReadReply(t testing.TB, p hardware.Port, gap time.Duration) []byte {
	t.Helper()
	got, _ := ReadReplyTimed(t, p, gap)
	return got
}

// ReadReplyTimed is ReadReply that also tells when the reply's last byte
// came, for tests that bound a round trip from below.
func ReadReplyTimed(t testing.TB, p hardware.Port, gap time.Duration) (reply []byte, last time.Time) {
	t.Helper()
	got, last := read(t, p, ReplyTimeout, gap)
	if len(got) == 0 {
		t.Fatalf("no reply within %v", ReplyTimeout)
	}
	return got, last
}

// read waits up to first for the first byte (0: quiet), then reads until
// quiet passes without a byte. last is when the last byte came.
func read(t testing.TB, p hardware.Port, first, quiet time.Duration) (got []byte, last time.Time) {
	t.Helper()
	buf := make([]byte, 256)
	if first > 0 {
		if err := p.SetReadTimeout(first); err != nil {
			t.Fatal(err)
		}
		n, err := p.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, time.Time{}
		}
		if err != nil {
			t.Fatal(err)
		}
		got, last = append(got, buf[:n]...), time.Now()
	}
	if err := p.SetReadTimeout(quiet); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(ReplyTimeout); time.Now().Before(deadline); {
		n, err := p.Read(buf)
		if n > 0 {
			got, last = append(got, buf[:n]...), time.Now()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return got, last
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("the line never went quiet for %v within %v", quiet, ReplyTimeout)
	return nil, time.Time{}
}
