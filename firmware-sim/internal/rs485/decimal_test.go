package rs485

import (
	"bytes"
	"errors"
	"testing"
)

func TestParseFixed(t *testing.T) {
	for _, c := range []struct {
		in          string
		scale, ints int
		want        int64
		err         string
	}{
		{"123456.78", 2, 6, 12345678, ""},
		{"-1.234", 3, 3, -1234, ""},
		{"+5", 1, 1, 50, ""},
		{".5", 1, 1, 5, ""},
		{"007.500", 2, 1, 750, ""},
		{"0", 0, 0, 0, ""},
		{"1.2345", 3, 3, 0, `"1.2345" has more than 3 decimals`},
		{"1234567", 0, 6, 0, `"1234567" has more than 6 integer digits`},
		{"", 2, 6, 0, `"" is not a decimal number`},
		{".", 2, 6, 0, `"." is not a decimal number`},
		{"1e3", 2, 6, 0, `"1e3" is not a decimal number`},
		{"--1", 2, 6, 0, `"--1" is not a decimal number`},
	} {
		got, err := ParseFixed(c.in, c.scale, c.ints)
		if c.err != "" {
			var de *DecimalError
			if !errors.As(err, &de) || err.Error() != c.err || de.Input != c.in {
				t.Errorf("ParseFixed(%q): error %v, want %s", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseFixed(%q, %d) = %d, %v; want %d", c.in, c.scale, got, err, c.want)
		}
	}
}

func TestFormatFixedRescale(t *testing.T) {
	for _, c := range []struct {
		v     int64
		scale int
		want  string
	}{{12345678, 2, "123456.78"}, {-1234, 3, "-1.234"}, {5, 3, "0.005"}, {-5, 1, "-0.5"}, {42, 0, "42"}} {
		if got := FormatFixed(c.v, c.scale); got != c.want {
			t.Errorf("FormatFixed(%d, %d) = %q, want %q", c.v, c.scale, got, c.want)
		}
	}
	for _, c := range []struct {
		v        int64
		from, to int
		want     int64
	}{{12345, 3, 1, 123}, {12350, 3, 1, 124}, {-12350, 3, 1, -124}, {-12349, 3, 1, -123}, {7, 1, 4, 7000}} {
		if got := Rescale(c.v, c.from, c.to); got != c.want {
			t.Errorf("Rescale(%d, %d, %d) = %d, want %d", c.v, c.from, c.to, got, c.want)
		}
	}
}

func TestBCD(t *testing.T) {
	if got := BCD(12345678, 4); !bytes.Equal(got, []byte{0x78, 0x56, 0x34, 0x12}) {
		t.Errorf("BCD = % X", got)
	}
	if got := BCD(123456, 2); !bytes.Equal(got, []byte{0x56, 0x34}) {
		t.Errorf("BCD keeps the low digits: % X", got)
	}
	for v := range 100 {
		b := BCDByte(v)
		if got, ok := UnBCDByte(b); !ok || got != v {
			t.Errorf("UnBCDByte(BCDByte(%d)=%02X) = %d, %v", v, b, got, ok)
		}
	}
	for _, b := range []byte{0x0A, 0xA0, 0xFF} {
		if _, ok := UnBCDByte(b); ok {
			t.Errorf("UnBCDByte(%02X) accepted a nibble above 9", b)
		}
	}
}

// FuzzParseFixed: whatever ParseFixed accepts, FormatFixed gives back as a
// string that parses to the same number, within the limits asked for.
func FuzzParseFixed(f *testing.F) {
	for _, s := range []string{"123456.78", "-1.234", "+5", ".5", "", ".", "1e3", "-0", "99999999999999999999", "0.000001"} {
		f.Add(s, 2, 6)
	}
	f.Fuzz(func(t *testing.T, s string, scale, ints int) {
		scale, ints = min(max(scale, 0), 6), min(max(ints, 0), 12)
		v, err := ParseFixed(s, scale, ints)
		if err != nil {
			var de *DecimalError
			if !errors.As(err, &de) || de.Input != s {
				t.Fatalf("ParseFixed(%q): %v is not a *DecimalError for the input", s, err)
			}
			return
		}
		if lim := Pow10(scale + ints); v >= lim || -v >= lim {
			t.Fatalf("ParseFixed(%q, %d, %d) = %d: out of range", s, scale, ints, v)
		}
		back, err := ParseFixed(FormatFixed(v, scale), scale, ints)
		if err != nil || back != v {
			t.Fatalf("%q → %d → %q → %d, %v", s, v, FormatFixed(v, scale), back, err)
		}
	})
}
