package serialsim_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serial"
	"github.com/townlink/townlink/hardware/serialsim"
)

// allBytes is every byte value, including the ones a cooked tty would
// translate (CR, LF, ^C, ^S, ^Q, DEL).
func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func readFull(t *testing.T, p hardware.Port, n int) []byte {
	t.Helper()
	if err := p.SetReadTimeout(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(p, buf); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return buf
}

func TestPTYPassesEveryByteBothWays(t *testing.T) {
	pty, err := serialsim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer pty.Close()
	// The gateway side opens the slave with the real serial backend, at a
	// mode a PTY ignores but must accept.
	gw, err := serial.Open(pty.Path(), hardware.Mode{Baud: 2400, Parity: hardware.ParityEven})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()

	if _, err := pty.Write(allBytes()); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, gw, 256); !bytes.Equal(got, allBytes()) {
		t.Fatalf("device→gateway altered bytes:\n% X", got)
	}
	if _, err := gw.Write(allBytes()); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, pty, 256); !bytes.Equal(got, allBytes()) {
		t.Fatalf("gateway→device altered bytes:\n% X", got)
	}
}

func TestReadTimeoutIsAnErrorOnBothSides(t *testing.T) {
	pty, err := serialsim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer pty.Close()
	gw, err := serial.Open(pty.Path(), hardware.Mode{Baud: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	for name, p := range map[string]hardware.Port{"serial": gw, "pty": pty} {
		if err := p.SetReadTimeout(20 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		n, err := p.Read(make([]byte, 8))
		if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s: timeout read = (%d, %v), want (0, deadline exceeded)", name, n, err)
		}
	}
}

func TestFlushDropsStaleInput(t *testing.T) {
	pty, err := serialsim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer pty.Close()
	gw, err := serial.Open(pty.Path(), hardware.Mode{Baud: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	pty.Write([]byte("late reply"))
	time.Sleep(50 * time.Millisecond) // let the bytes reach the slave's input queue
	if err := gw.Flush(); err != nil {
		t.Fatal(err)
	}
	pty.Write([]byte{0x42})
	if got := readFull(t, gw, 1); got[0] != 0x42 {
		t.Fatalf("after Flush read %X, want 42", got)
	}
}

func TestLinkIsANullModem(t *testing.T) {
	l, err := serialsim.NewLink()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, err := serial.Open(l.A.Path(), hardware.Mode{Baud: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := serial.Open(l.B.Path(), hardware.Mode{Baud: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a.Write(allBytes())
	if got := readFull(t, b, 256); !bytes.Equal(got, allBytes()) {
		t.Fatalf("A→B altered bytes")
	}
	b.Write([]byte{1, 2, 3})
	if got := readFull(t, a, 3); !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Fatalf("B→A = % X", got)
	}
}

func TestOpenMissingPortSaysWhat(t *testing.T) {
	_, err := serial.Open("/dev/ttyNOPE9", hardware.Mode{Baud: 9600})
	if !errors.Is(err, serial.ErrOpen) {
		t.Fatalf("err = %v, want ErrOpen", err)
	}
	if !bytes.Contains([]byte(err.Error()), []byte("/dev/ttyNOPE9")) {
		t.Fatalf("error does not name the port: %v", err)
	}
}

func TestScriptPlaysExchange(t *testing.T) {
	s := serialsim.NewScript(t, serialsim.Step{Expect: []byte{1, 2}, Reply: []byte{3}}, serialsim.Step{Expect: []byte{4}})
	s.Write([]byte{1})
	s.Write([]byte{2})
	buf := make([]byte, 4)
	if n, err := s.Read(buf); n != 1 || err != nil || buf[0] != 3 {
		t.Fatalf("read = %d %v % X", n, err, buf[:n])
	}
	s.Write([]byte{4})
	if _, err := s.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("silent step: err = %v", err)
	}
}
