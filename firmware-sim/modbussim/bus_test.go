package modbussim

import (
	"bytes"
	"errors"
	"github.com/townlink/townlink/internal/testkit"
	"io"
	"os"
	"testing"
	"time"

	"github.com/townlink/townlink/hardware"
)

// exchange writes req and reads n reply bytes (n = 0: expects silence
// for quiet).
func exchange(t *testing.T, p hardware.Port, req []byte, n int, quiet time.Duration) []byte {
	t.Helper()
	if _, err := p.Write(req); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		must(t, p.SetReadTimeout(quiet))
		buf := make([]byte, 64)
		k, err := p.Read(buf)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("request % X: want silence, got % X, %v", req, buf[:k], err)
		}
		return nil
	}
	must(t, p.SetReadTimeout(testkit.ReplyTimeout))
	buf := make([]byte, n)
	if _, err := io.ReadFull(p, buf); err != nil {
		t.Fatalf("request % X: reading %d-byte reply: %v", req, n, err)
	}
	return buf
}

// Two units on one PTY: each answers only its own requests; noise and a
// damaged frame on the line get no reply and do not disturb the next
// request.
func TestMultiDropOnPTY(t *testing.T) {
	u1, u2 := NewUnit(1), NewUnit(2)
	u1.SetHolding(0, 0x0101)
	u2.SetHolding(0, 0x0202)
	bus := NewBus(mode9600, u1, u2)
	gw := testkit.OpenServedPTY(t, mode9600, bus.Serve)

	r1 := appendCRC([]byte{1, 3, 0, 0, 0, 1})
	r2 := appendCRC([]byte{2, 3, 0, 0, 0, 1})
	r3 := appendCRC([]byte{3, 3, 0, 0, 0, 1})
	if got, want := exchange(t, gw, r1, 7, 0), appendCRC([]byte{1, 3, 2, 1, 1}); !bytes.Equal(got, want) {
		t.Errorf("unit 1: % X, want % X", got, want)
	}
	if got, want := exchange(t, gw, r2, 7, 0), appendCRC([]byte{2, 3, 2, 2, 2}); !bytes.Equal(got, want) {
		t.Errorf("unit 2: % X, want % X", got, want)
	}
	exchange(t, gw, r3, 0, 300*time.Millisecond)
	bad := bytes.Clone(r2)
	bad[len(bad)-1] ^= 1
	exchange(t, gw, bad, 0, 300*time.Millisecond)
	exchange(t, gw, []byte{0x68, 0xAA, 0x16, 0xFE}, 0, 300*time.Millisecond) // another protocol's bytes
	if got, want := exchange(t, gw, r1, 7, 0), appendCRC([]byte{1, 3, 2, 1, 1}); !bytes.Equal(got, want) {
		t.Errorf("unit 1 after noise: % X, want % X", got, want)
	}
	// The bus counts a reply after writing it: give it a moment.
	ok := func(s Stats) bool {
		return s.Units[1].Replies == 2 && s.Units[2].Replies == 1 && s.Ignored == 1 && s.Dropped > 0
	}
	for deadline := time.Now().Add(5 * time.Second); !ok(bus.Stats()) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if s := bus.Stats(); !ok(s) {
		t.Errorf("stats %+v", s)
	}
}

// With WireTime the reply comes no earlier than the request's and the
// reply's wire time plus t3.5; Slow adds its delay on top.
func TestWireTimeAndSlow(t *testing.T) {
	m := hardware.Mode{Baud: 1200} // slow line so the wire time dominates the noise
	u := NewUnit(1)
	u.SetHolding(0, make([]uint16, 10)...)
	bus := NewBus(m, u)
	bus.WireTime = true
	gw := testkit.OpenServedPTY(t, m, bus.Serve)

	req := appendCRC([]byte{1, 3, 0, 0, 0, 10}) // 8 bytes out, 25 back
	min := m.WireTime(8) + m.WireTime(25) + m.CharTime()*7/2
	start := time.Now()
	exchange(t, gw, req, 25, 0)
	took := time.Since(start)
	if took < min {
		t.Errorf("reply after %v, want at least %v of wire time", took, min)
	}
	t.Logf("1200 8N1, 8+25 bytes: reply after %v (wire time + t3.5 = %v)", took, min)

	u.SetFault(Slow(300 * time.Millisecond).Times(1))
	start = time.Now()
	exchange(t, gw, req, 25, 0)
	if took := time.Since(start); took < min+300*time.Millisecond {
		t.Errorf("slow reply after %v, want at least %v", took, min+300*time.Millisecond)
	}
}
