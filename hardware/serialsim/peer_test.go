package serialsim

import (
	"bytes"
	"testing"
	"time"

	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serial"
)

// A master at the gate's rate is heard as sent; at another rate, as 0xFF.
func TestBaudGate(t *testing.T) {
	pty, err := OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer pty.Close()
	gate := NewBaudGate(pty, 19200)
	for _, c := range []struct {
		baud int
		want []byte
	}{{19200, []byte{1, 2, 3}}, {9600, []byte{0xFF, 0xFF, 0xFF}}} {
		gw, err := serial.Open(pty.Path(), hardware.Mode{Baud: c.baud})
		if err != nil {
			t.Fatal(err)
		}
		if b, err := pty.PeerBaud(); err != nil || b != c.baud {
			t.Errorf("PeerBaud = %d, %v; want %d", b, err, c.baud)
		}
		if _, err := gw.Write([]byte{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		var got []byte
		buf := make([]byte, 16)
		if err := gate.SetReadTimeout(time.Second); err != nil {
			t.Fatal(err)
		}
		for len(got) < 3 {
			n, err := gate.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, buf[:n]...)
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("at %d: gate read % X, want % X", c.baud, got, c.want)
		}
		gw.Close()
	}
}
