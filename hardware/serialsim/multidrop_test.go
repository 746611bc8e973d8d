package serialsim_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serial"
	"github.com/townlink/townlink/hardware/serialsim"
)

// startMultidrop opens a PTY, shares its master side, opens the slave side
// as the gateway would, and stops everything at the end of the test.
func startMultidrop(t *testing.T) (*serialsim.Multidrop, *serial.Port, func() error) {
	t.Helper()
	pty, err := serialsim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	gw, err := serial.Open(pty.Path(), hardware.Mode{Baud: 2400, Parity: hardware.ParityEven})
	if err != nil {
		pty.Close()
		t.Fatal(err)
	}
	md := serialsim.NewMultidrop(pty)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- md.Run(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		err := <-done
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
		gw.Close()
		pty.Close()
	})
	return md, gw, stop
}

func TestMultidropEveryDeviceHearsTheMasterAndCanReply(t *testing.T) {
	md, gw, _ := startMultidrop(t)
	a, b := md.Attach(), md.Attach()

	req := []byte{0xFE, 0xFE, 0x68, 0x01, 0x02, 0x03, 0x16, 0x00, 0xFF, 0x0D, 0x0A}
	if _, err := gw.Write(req); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, a, len(req)); !bytes.Equal(got, req) {
		t.Fatalf("device A heard % X, want % X", got, req)
	}
	if got := readFull(t, b, len(req)); !bytes.Equal(got, req) {
		t.Fatalf("device B heard % X, want % X", got, req)
	}

	if _, err := a.Write([]byte("reply-from-A;")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte("reply-from-B;")); err != nil {
		t.Fatal(err)
	}
	got := string(readFull(t, gw, 26))
	if got != "reply-from-A;reply-from-B;" {
		t.Fatalf("gateway got %q", got)
	}
}

func TestMultidropFlushAndTimeoutArePerPort(t *testing.T) {
	md, gw, stop := startMultidrop(t)
	a, b := md.Attach(), md.Attach()
	if _, err := gw.Write([]byte("stale")); err != nil {
		t.Fatal(err)
	}
	// Both have it once B has it: Run delivers one chunk to all ports in turn.
	readFull(t, b, 5)
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := a.SetReadTimeout(30 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := a.Read(buf); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after Flush A read (%d, %v), want a timeout", n, err)
	}

	if _, err := gw.Write([]byte("fresh")); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, a, 5); string(got) != "fresh" {
		t.Fatalf("A read %q after flush, want fresh", got)
	}
	if got := readFull(t, b, 5); string(got) != "fresh" {
		t.Fatalf("B read %q, want fresh (A's Flush must not touch B)", got)
	}

	if err := stop(); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if err := b.SetReadTimeout(0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Read(buf); !errors.Is(err, serialsim.ErrMultidropStopped) {
		t.Fatalf("read after Run ended: %v, want ErrMultidropStopped", err)
	}
	if _, err := md.Attach().Read(buf); !errors.Is(err, serialsim.ErrMultidropStopped) {
		t.Fatalf("read on a port attached after Run ended: %v", err)
	}
}

// Concurrent writes from different devices never interleave inside one
// write call.
func TestMultidropWritesAreAtomic(t *testing.T) {
	md, gw, _ := startMultidrop(t)
	const devices, frames, size = 3, 40, 48
	var wg sync.WaitGroup
	for d := range devices {
		p := md.Attach()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range frames {
				f := bytes.Repeat([]byte{byte('a' + d)}, size)
				copy(f, fmt.Sprintf("%c%03d", 'a'+d, i))
				if _, err := p.Write(f); err != nil {
					t.Errorf("device %d: %v", d, err)
					return
				}
			}
		}()
	}
	if err := gw.SetReadTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	all := make([]byte, devices*frames*size)
	if _, err := io.ReadFull(gw, all); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	next := make([]int, devices)
	for off := 0; off < len(all); off += size {
		f := all[off : off+size]
		d := int(f[0] - 'a')
		if d < 0 || d >= devices {
			t.Fatalf("frame at %d starts with %q", off, f[0])
		}
		want := bytes.Repeat([]byte{f[0]}, size)
		copy(want, fmt.Sprintf("%c%03d", f[0], next[d]))
		if !bytes.Equal(f, want) {
			t.Fatalf("interleaved or out-of-order frame at %d: %q, want %q", off, f, want)
		}
		next[d]++
	}
}
