package serial

import (
	"errors"
	"testing"

	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serialsim"
)

// A second Open of a device a Port holds is refused, naming why (as root
// too: the library's TIOCEXCL does not stop root, and a second open would
// re-set the baud under the gateway and garble its frames); once the
// first is closed the device opens again.
func TestSecondOpenOfTheSameDeviceIsRefused(t *testing.T) {
	pty, err := serialsim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer pty.Close()
	mode := hardware.Mode{Baud: 9600}
	p, err := Open(pty.Path(), mode)
	if err != nil {
		t.Fatal(err)
	}
	if p2, err := Open(pty.Path(), mode); !errors.Is(err, ErrInUse) || !errors.Is(err, ErrOpen) {
		if p2 != nil {
			p2.Close()
		}
		t.Fatalf("second Open = %v, want ErrOpen and ErrInUse", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p3, err := Open(pty.Path(), mode)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	p3.Close()
}
