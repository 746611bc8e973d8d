package hardware_test

import (
	"errors"
	"testing"
	"time"

	"github.com/townlink/townlink/hardware"
)

func TestCharTime(t *testing.T) {
	cases := []struct {
		m    hardware.Mode
		bits int
		char time.Duration
	}{
		{hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}, 11, 4583333 * time.Nanosecond},
		{hardware.Mode{Baud: 9600}, 10, 1041666 * time.Nanosecond},
		{hardware.Mode{Baud: 9600, StopBits: 2}, 11, 1145833 * time.Nanosecond},
	}
	for _, c := range cases {
		if got := c.m.CharBits(); got != c.bits {
			t.Errorf("%s: CharBits = %d, want %d", c.m, got, c.bits)
		}
		if got := c.m.CharTime(); got != c.char {
			t.Errorf("%s: CharTime = %v, want %v", c.m, got, c.char)
		}
	}
	if got := (hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}).WireTime(24); got != 110*time.Millisecond {
		t.Errorf("WireTime(24) at 2400 8E1 = %v, want 110ms", got)
	}
}

func TestModeValidate(t *testing.T) {
	for _, m := range []hardware.Mode{{Baud: 0}, {Baud: 9600, DataBits: 9}, {Baud: 9600, StopBits: 3}, {Baud: 9600, Parity: 7}} {
		if err := m.Validate(); !errors.Is(err, hardware.ErrMode) {
			t.Errorf("%+v: err = %v, want ErrMode", m, err)
		}
	}
	if _, err := hardware.ParseParity("mark"); !errors.Is(err, hardware.ErrMode) {
		t.Errorf("ParseParity(mark) = %v", err)
	}
	if p, err := hardware.ParseParity("even"); err != nil || p != hardware.ParityEven {
		t.Errorf("ParseParity(even) = %v %v", p, err)
	}
}
