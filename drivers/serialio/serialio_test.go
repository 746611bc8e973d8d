package serialio_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/serialio"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serial"
	"github.com/townlink/townlink/hardware/serialsim"
	"github.com/townlink/townlink/internal/testkit"
)

// split frames a toy protocol shaped like DL/T 645: noise and 0xFE
// preamble before 0x68, then LEN, LEN data bytes and 0x16.
func split(buf []byte) (skip, n int, err error) {
	if i := bytes.IndexByte(buf, 0x68); i != 0 {
		if i < 0 {
			return len(buf), 0, nil
		}
		return i, 0, nil
	}
	if len(buf) < 2 {
		return 0, 0, nil
	}
	n = 3 + int(buf[1])
	if len(buf) < n {
		return 0, 0, nil
	}
	if buf[n-1] != 0x16 {
		return 0, 0, fmt.Errorf("end byte %02X, want 16", buf[n-1])
	}
	return 0, n, nil
}

var req = []byte{0x68, 0x01, 0x01, 0x16}

func TestTransactScript(t *testing.T) {
	cases := []struct {
		name  string
		reply string
		want  string // frame, or the error text
		err   error
	}{
		{"clean", "68 02 AA BB 16", "68 02 AA BB 16", nil},
		{"preamble and noise skipped", "FE FE 00 33 68 02 AA BB 16", "68 02 AA BB 16", nil},
		{"trailing bytes left", "68 00 16 77 77", "68 00 16", nil},
		{"silent", "", "", drivers.ErrTimeout},
		{"noise only", "FE FE FE", "noise", drivers.ErrFrame},
		{"cut off", "68 02 AA", "cut off", drivers.ErrFrame},
		{"split error", "68 02 AA BB 00", "end byte 00", drivers.ErrFrame},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := serialsim.NewScript(t, serialsim.Step{Expect: req, Reply: testkit.Unhex(t, c.reply)})
			got, err := serialio.Transact(context.Background(), p, req, 50*time.Millisecond, split)
			if c.err != nil {
				if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("err = %v, want %v with %q", err, c.err, c.want)
				}
				if c.err == drivers.ErrTimeout && errors.Is(err, drivers.ErrFrame) {
					t.Fatal("silence is not a frame error")
				}
				return
			}
			if err != nil || !bytes.Equal(got, testkit.Unhex(t, c.want)) {
				t.Fatalf("got % X, %v; want %s", got, err, c.want)
			}
		})
	}
}

func TestTransactFlushesStaleInput(t *testing.T) {
	// The first exchange's reply carries a second, late frame; it must be
	// dropped before the second request, not taken as its answer.
	p := serialsim.NewScript(t,
		serialsim.Step{Expect: req, Reply: testkit.Unhex(t, "68 01 11 16 68 01 22 16")},
		serialsim.Step{Expect: testkit.Unhex(t, "68 01 02 16"), Reply: testkit.Unhex(t, "68 01 33 16")},
	)
	ctx := context.Background()
	got, err := serialio.Transact(ctx, p, req, time.Second, split)
	if err != nil || !bytes.Equal(got, testkit.Unhex(t, "68 01 11 16")) {
		t.Fatalf("first: % X %v", got, err)
	}
	got, err = serialio.Transact(ctx, p, testkit.Unhex(t, "68 01 02 16"), time.Second, split)
	if err != nil || !bytes.Equal(got, testkit.Unhex(t, "68 01 33 16")) {
		t.Fatalf("second: % X %v (stale input not flushed)", got, err)
	}
}

func TestTransactNoReplyWanted(t *testing.T) {
	p := serialsim.NewScript(t, serialsim.Step{Expect: req})
	if got, err := serialio.Transact(context.Background(), p, req, time.Second, nil); got != nil || err != nil {
		t.Fatalf("%v %v", got, err)
	}
}

func TestTransactCancelledContext(t *testing.T) {
	p := serialsim.NewScript(t, serialsim.Step{Expect: req})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := serialio.Transact(ctx, p, req, time.Minute, split); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestTransactGivesUpOnEndlessNoise(t *testing.T) {
	never := func([]byte) (int, int, error) { return 0, 0, nil }
	p := serialsim.NewScript(t, serialsim.Step{Expect: req, Reply: bytes.Repeat([]byte{0x55}, 5000)})
	if _, err := serialio.Transact(context.Background(), p, req, time.Minute, never); !errors.Is(err, drivers.ErrFrame) {
		t.Fatalf("err = %v", err)
	}
}

// ptyPair is a PTY with the gateway side opened through the real serial
// backend.
func ptyPair(t *testing.T) (dev *serialsim.PTY, gw *serial.Port) {
	t.Helper()
	dev, err := serialsim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	gw, err = serial.Open(dev.Path(), hardware.Mode{Baud: 9600})
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		gw.Close()
		dev.Close()
	})
	return dev, gw
}

// device runs fn as the device side and waits for it when the test ends.
func device(t *testing.T, fn func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		fn()
	}()
	t.Cleanup(wg.Wait)
}

// readReq reads one request on the device side.
func readReq(t *testing.T, dev *serialsim.PTY) []byte {
	dev.SetReadTimeout(10 * time.Second)
	buf := make([]byte, len(req))
	for n := 0; n < len(buf); {
		m, err := dev.Read(buf[n:])
		if err != nil {
			t.Errorf("device: read request: %v", err)
			return nil
		}
		n += m
	}
	return buf
}

func TestTransactPTY(t *testing.T) {
	dev, gw := ptyPair(t)
	device(t, func() {
		if got := readReq(t, dev); !bytes.Equal(got, req) {
			t.Errorf("device got % X", got)
			return
		}
		// Preamble and frame in pieces, as a slow line delivers them.
		for _, part := range []string{"FE FE", "FE 68 02", "AA BB", "16"} {
			dev.Write(testkit.Unhex(t, part))
			time.Sleep(5 * time.Millisecond)
		}
	})
	got, err := serialio.Transact(context.Background(), gw, req, 5*time.Second, split)
	if err != nil || !bytes.Equal(got, testkit.Unhex(t, "68 02 AA BB 16")) {
		t.Fatalf("% X %v", got, err)
	}
}

func TestTransactPTYFlushesStaleInput(t *testing.T) {
	dev, gw := ptyPair(t)
	// A late reply to an earlier request is already waiting in the
	// gateway's input queue.
	dev.Write(testkit.Unhex(t, "68 01 22 16"))
	waitInputQueued(t, dev.Path(), 4)
	device(t, func() {
		if readReq(t, dev) != nil {
			dev.Write(testkit.Unhex(t, "68 01 33 16"))
		}
	})
	got, err := serialio.Transact(context.Background(), gw, req, 5*time.Second, split)
	if err != nil || !bytes.Equal(got, testkit.Unhex(t, "68 01 33 16")) {
		t.Fatalf("got % X %v, want the fresh reply", got, err)
	}
}

// waitInputQueued waits until the tty at path holds n unread input bytes
// (the queue is per tty, so a second descriptor sees it).
func waitInputQueued(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		q, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCINQ)
		if err != nil {
			t.Fatal(err)
		}
		if q >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes queued on %s, want %d", q, path, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestTransactPTYTimeoutAndCutOff(t *testing.T) {
	dev, gw := ptyPair(t)
	// Silent device.
	device(t, func() { readReq(t, dev) })
	if _, err := serialio.Transact(context.Background(), gw, req, 200*time.Millisecond, split); !errors.Is(err, drivers.ErrTimeout) {
		t.Fatalf("silent: %v", err)
	}
	// A reply cut off.
	dev2, gw2 := ptyPair(t)
	device(t, func() {
		if readReq(t, dev2) != nil {
			dev2.Write(testkit.Unhex(t, "68 05 01 02"))
		}
	})
	_, err := serialio.Transact(context.Background(), gw2, req, 300*time.Millisecond, split)
	if !errors.Is(err, drivers.ErrFrame) || !strings.Contains(err.Error(), "cut off") {
		t.Fatalf("cut off: %v", err)
	}
}

func TestTransactPTYContextCancel(t *testing.T) {
	dev, gw := ptyPair(t)
	device(t, func() { readReq(t, dev) })
	ctx, cancel := context.WithCancel(context.Background())
	stop := time.AfterFunc(100*time.Millisecond, cancel)
	defer stop.Stop()
	// The timeout is long: only the cancellation can end the wait.
	if _, err := serialio.Transact(ctx, gw, req, time.Minute, split); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}
