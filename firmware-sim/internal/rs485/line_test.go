package rs485

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serial"
	"github.com/townlink/townlink/hardware/serialsim"
	"github.com/townlink/townlink/internal/testkit"
)

var mode2400 = hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}

var errToyWireTime = errors.New("toy: wire time needs a valid serial mode")

// toyMeter answers a toy frame whose first data byte is its address with
// the same frame, data reversed, behind one FE.
type toyMeter struct {
	addr  byte
	fault Fault
}

func (m toyMeter) handle(f []byte) Reply {
	if len(f) == 0 || (f[0] != m.addr && f[0] != 0xAA) {
		return Reply{}
	}
	data := append([]byte(nil), f...)
	data[0] = m.addr
	for i, j := 1, len(data)-1; i < j; i, j = i+1, j-1 {
		data[i], data[j] = data[j], data[i]
	}
	b, d, faulted := m.fault.Apply(func(bool) []byte { return append([]byte{0xFE}, toyFrame(data...)...) }, 1, 0x68, nil)
	return Reply{Bytes: b, Delay: d, Mine: true, Faulted: faulted}
}

func toyConfig(wire bool, meters ...toyMeter) Config[[]byte] {
	return Config[[]byte]{
		Name: "toy", ErrWireTime: errToyWireTime,
		Mode: mode2400, WireTime: wire, Turnaround: 20 * time.Millisecond,
		Preamble: 0xFE,
		Scan: func(buf []byte) ([]byte, int, int, int, bool) {
			begin, end, keep, ok := Resync(buf, 0x68, toyCandidate)
			if !ok {
				return nil, 0, 0, keep, false
			}
			return append([]byte(nil), buf[begin+2:end-2]...), begin, end, 0, true
		},
		Handle: func(f []byte) []Reply {
			var rs []Reply
			for _, m := range meters {
				rs = append(rs, m.handle(f))
			}
			return rs
		},
		Describe: func(f []byte) []any { return []any{"data", fmt.Sprintf("% X", f)} },
	}
}

// servePTY serves l on a PTY and returns its other side, opened with the
// real serial backend as a gateway would.
func servePTY(t *testing.T, l *Line[[]byte], c Config[[]byte]) *serial.Port {
	t.Helper()
	return testkit.OpenServedPTY(t, mode2400, func(ctx context.Context, p hardware.Port) error { return l.Serve(ctx, p, c) })
}

// roundTrip writes req and returns the reply (what comes until the line
// has been quiet for 300 ms) and how long it took to its last byte.
func roundTrip(t *testing.T, gw *serial.Port, req []byte) (reply []byte, took time.Duration) {
	t.Helper()
	start := time.Now()
	if _, err := gw.Write(req); err != nil {
		t.Fatal(err)
	}
	reply, last := testkit.ReadReplyTimed(t, gw, 300*time.Millisecond)
	return reply, last.Sub(start)
}

func TestLineAnswersCollidesAndCounts(t *testing.T) {
	var l Line[[]byte]
	gw := servePTY(t, &l, toyConfig(false, toyMeter{addr: 0x01}, toyMeter{addr: 0x02}, toyMeter{addr: 0x03, fault: Silent}))

	// Noise and a preamble in front of a request to meter 1.
	got, _ := roundTrip(t, gw, append([]byte{0x00, 0x11, 0xFE, 0xFE}, toyFrame(0x01, 0x10, 0x20)...))
	if want := append([]byte{0xFE}, toyFrame(0x01, 0x20, 0x10)...); !bytes.Equal(got, want) {
		t.Fatalf("reply\n got % X\nwant % X", got, want)
	}
	// The wildcard: meters 1 and 2 collide (bitwise AND), meter 3 is silent.
	got, _ = roundTrip(t, gw, toyFrame(0xAA, 0x10, 0x20))
	a := append([]byte{0xFE}, toyFrame(0x01, 0x20, 0x10)...)
	b := append([]byte{0xFE}, toyFrame(0x02, 0x20, 0x10)...)
	if want := Collide([][]byte{a, b}); !bytes.Equal(got, want) || bytes.Equal(got, a) {
		t.Fatalf("collision\n got % X\nwant % X", got, want)
	}
	// Nobody's address: ignored, no reply.
	if _, err := gw.Write(toyFrame(0x09)); err != nil {
		t.Fatal(err)
	}
	if got = testkit.ReadQuiet(t, gw, 300*time.Millisecond); len(got) != 0 {
		t.Fatalf("an unknown address got % X", got)
	}
	var s Stats
	l.Locked(func(c *Stats) { s = *c })
	want := Stats{Frames: 3, Ignored: 1, Replies: 2, Collisions: 1, Faulted: 1, Discarded: 2}
	if s != want {
		t.Errorf("stats %+v, want %+v", s, want)
	}
}

// With WireTime, an exchange takes at least what it would on the wire.
func TestLineWireTime(t *testing.T) {
	var l Line[[]byte]
	c := toyConfig(true, toyMeter{addr: 0x01, fault: Slow(10 * time.Millisecond)})
	gw := servePTY(t, &l, c)
	req := append([]byte{0xFE, 0xFE}, toyFrame(0x01, 1, 2, 3, 4, 5, 6, 7, 8)...)
	for range 3 {
		got, took := roundTrip(t, gw, req)
		if len(got) != len(req)-1 {
			t.Fatalf("reply % X", got)
		}
		least := mode2400.WireTime(len(req)) + c.Turnaround + 10*time.Millisecond + mode2400.WireTime(len(got))
		if took < least {
			t.Errorf("round trip %v, shorter than the wire time %v", took, least)
		}
		t.Logf("round trip %v, wire time %v", took, least)
	}
}

func TestLineRefusesWireTimeWithoutMode(t *testing.T) {
	var l Line[[]byte]
	c := toyConfig(true)
	c.Mode = hardware.Mode{}
	pty, err := serialsim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer pty.Close()
	if err := l.Serve(context.Background(), pty, c); !errors.Is(err, errToyWireTime) {
		t.Fatalf("Serve with a zero Mode: %v, want %v", err, errToyWireTime)
	}
}
