package board

import (
	"errors"
	"strings"
	"testing"
)

func TestLookupAndResolve(t *testing.T) {
	p, err := Lookup("generic-linux")
	if err != nil {
		t.Fatal(err)
	}
	for label, want := range map[string]string{"RS485-1": "/dev/ttyUSB0", "rs485_2": "/dev/ttyUSB1", " RS232 1 ": "/dev/ttyS0",
		"/dev/ttyUSB7": "/dev/ttyUSB7", "/tmp/demo/dev/RS485-1": "/tmp/demo/dev/RS485-1"} {
		if got, err := p.Serial(label); got != want || err != nil {
			t.Errorf("Serial(%q) = %q, %v; want %q", label, got, err, want)
		}
	}
	for label, want := range map[string]string{"DI3": "DI3", "di1": "DI1", "gpiochip0:17": "gpiochip0:17", "/dev/gpiochip1:3": "/dev/gpiochip1:3"} {
		if got, err := p.GPIO(label); got != want || err != nil {
			t.Errorf("GPIO(%q) = %q, %v; want %q", label, got, err, want)
		}
	}
	cm4, err := Lookup("rpi-cm4-din")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := cm4.GPIO("DI2"); got != "GPIO17" {
		t.Errorf("rpi-cm4-din DI2 = %q", got)
	}
	if got, _ := cm4.GPIO("GPIO17"); got != "GPIO17" {
		t.Errorf("a line name of the board passes through: %q", got)
	}
	for _, e := range append(cm4.Serials(), cm4.Inputs()...) {
		if !e.Unsure {
			t.Errorf("rpi-cm4-din %s is not marked unsure", e.Label)
		}
	}
	if !strings.Contains(cm4.Source, "[unsure]") {
		t.Error("rpi-cm4-din source does not say what is unsure")
	}
}

func TestWrongLabelNamesTheLabelsThatExist(t *testing.T) {
	p, _ := Lookup("generic-linux")
	_, err := p.Serial("RS485-3")
	if !errors.Is(err, ErrNoLabel) {
		t.Fatalf("Serial(RS485-3) = %v", err)
	}
	if want := `board generic-linux has no serial port "RS485-3" (it has RS485-1, RS485-2, RS232-1)`; !strings.HasSuffix(err.Error(), want) {
		t.Fatalf("error %q\nwant it to end with %q", err, want)
	}
	_, err = p.GPIO("DI5")
	if want := `board generic-linux has no GPIO input "DI5" (it has DI1, DI2, DI3, DI4)`; !errors.Is(err, ErrNoLabel) || !strings.HasSuffix(err.Error(), want) {
		t.Fatalf("GPIO(DI5) = %v", err)
	}
	// A serial label is not a GPIO input.
	if _, err := p.GPIO("RS485-1"); !errors.Is(err, ErrNoLabel) {
		t.Fatalf("GPIO(RS485-1) = %v", err)
	}
	if _, err := p.GPIO("DI-"); !errors.Is(err, ErrLabel) {
		t.Fatalf("GPIO(DI-) = %v", err)
	}
	if _, err := Lookup("pi5"); !errors.Is(err, ErrUnknownBoard) || !strings.Contains(err.Error(), "generic-linux, rpi-cm4-din") {
		t.Fatalf("Lookup(pi5) = %v", err)
	}
}

func TestNamesAndProfilesAreData(t *testing.T) {
	if got := strings.Join(Names(), ","); got != "generic-linux,rpi-cm4-din" {
		t.Fatalf("Names = %s", got)
	}
	p, _ := Lookup("generic-linux")
	s := p.Serials()
	s[0].Value = "/dev/evil"
	q, _ := Lookup("generic-linux")
	if got, _ := q.Serial("RS485-1"); got != "/dev/ttyUSB0" {
		t.Fatal("a caller changed the profile table")
	}
	// Every profile's labels are canonical and unique.
	for _, n := range Names() {
		p, _ := Lookup(n)
		seen := map[string]bool{}
		for _, e := range append(p.Serials(), p.Inputs()...) {
			if c, err := ParseLabel(e.Label); err != nil || c != e.Label || seen[c] {
				t.Errorf("%s: label %q (canonical %q, %v, duplicate %v)", n, e.Label, c, err, seen[c])
			}
			seen[e.Label] = true
		}
	}
}

func TestParseLabel(t *testing.T) {
	for in, want := range map[string]string{"RS485-1": "RS485-1", "rs485_1": "RS485-1", "di3": "DI3", " DO 2 ": "DO-2"} {
		if got, err := ParseLabel(in); got != want || err != nil {
			t.Errorf("ParseLabel(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "1DI", "DI--1", "DI-", "DI/1", "DÍ1", "ABCDEFGHIJKLMNOPQ"} {
		if _, err := ParseLabel(in); !errors.Is(err, ErrLabel) {
			t.Errorf("ParseLabel(%q) = %v, want ErrLabel", in, err)
		}
	}
}

func FuzzParseLabel(f *testing.F) {
	for _, s := range []string{"RS485-1", "rs485_1", "DI3", "di 4", "", "-", "1A", "gpiochip0:17", "/dev/ttyUSB0", "RS485--1", "ÄÖ"} {
		f.Add(s)
	}
	p, _ := Lookup("generic-linux")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseLabel(s)
		if err != nil {
			if !errors.Is(err, ErrLabel) {
				t.Fatalf("%q: %v is not ErrLabel", s, err)
			}
		} else {
			again, err := ParseLabel(c)
			if err != nil || again != c {
				t.Fatalf("%q → %q is not canonical: %q %v", s, c, again, err)
			}
		}
		// Resolving never panics, and fails only with the package's errors.
		if v, err := p.Serial(s); err != nil && !errors.Is(err, ErrNoLabel) && !errors.Is(err, ErrLabel) || err == nil && v == "" {
			t.Fatalf("Serial(%q) = %q, %v", s, v, err)
		}
		if v, err := p.GPIO(s); err != nil && !errors.Is(err, ErrNoLabel) && !errors.Is(err, ErrLabel) || err == nil && v == "" {
			t.Fatalf("GPIO(%q) = %q, %v", s, v, err)
		}
	})
}
