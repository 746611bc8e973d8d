package gpio

import (
	"errors"
	"testing"
)

func FuzzParseLineSpec(f *testing.F) {
	for _, s := range []string{"gpiochip0:17", "/dev/gpiochip12:3", "GPIO17", "gpiochip0", "/dev/gpiochip0", "gpiochipX:1", "gpiochip0:", "gpiochip0:99999999", "DI1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, ok, err := ParseLineSpec(s)
		if err != nil && !ok {
			t.Fatalf("%q: error %v without ok", s, err)
		}
		if !ok || err != nil {
			return
		}
		if spec.Offset < 0 || spec.Offset > maxOffset {
			t.Fatalf("%q: offset %d", s, spec.Offset)
		}
		again, ok2, err2 := ParseLineSpec(spec.String())
		if !ok2 || err2 != nil || again != spec {
			t.Fatalf("%q → %v does not round-trip: %v %v %v", s, spec, again, ok2, err2)
		}
	})
}

func TestParseLineSpec(t *testing.T) {
	for _, c := range []struct {
		in     string
		want   LineSpec
		ok     bool
		hasErr bool
	}{
		{"gpiochip0:17", LineSpec{"gpiochip0", 17}, true, false},
		{"/dev/gpiochip2:5", LineSpec{"gpiochip2", 5}, true, false},
		{"GPIO17", LineSpec{}, false, false},
		{"gpiochip0", LineSpec{}, false, false},
		{"/dev/gpiochip0", LineSpec{}, true, true},
		{"gpiochip0:x", LineSpec{}, true, true},
		{"gpiochipA:1", LineSpec{}, true, true},
		{"gpiochip0:70000", LineSpec{}, true, true},
	} {
		got, ok, err := ParseLineSpec(c.in)
		if got != c.want || ok != c.ok || (err != nil) != c.hasErr {
			t.Errorf("ParseLineSpec(%q) = %v, %v, %v", c.in, got, ok, err)
		}
		if err != nil && !errors.Is(err, ErrNoLine) {
			t.Errorf("%q: error %v is not ErrNoLine", c.in, err)
		}
	}
}
