package drivers

import (
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"
)

func TestDecString(t *testing.T) {
	cases := []struct {
		v    Value
		want string
	}{
		{Dec(12345678, -2), "123456.78"},
		{Dec(-5, -2), "-0.05"},
		{Dec(5, -2), "0.05"},
		{Dec(253, -1), "25.3"},
		{Dec(-1, -3), "-0.001"},
		{Dec(5, 2), "500"},
		{Dec(0, 3), "0"},
		{Dec(0, -2), "0.00"},
		{Dec(7, 0), "7"},
		{Dec(math.MinInt64, 0), "-9223372036854775808"},
		{Dec(math.MinInt64, -19), "-0.9223372036854775808"},
		{Dec(math.MaxInt64, -2), "92233720368547758.07"},
		{Int(-42), "-42"},
		{Float(12.5), "12.5"},
		{Bool(true), "true"},
		{Text("x"), "x"},
		{Value{}, "<none>"},
	}
	for _, c := range cases {
		if got := c.v.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
	}
}

func TestParseDecimal(t *testing.T) {
	good := []struct {
		s    string
		mant int64
		exp  int32
	}{
		{"0.05", 5, -2},
		{"-0.05", -5, -2},
		{"-123.45", -12345, -2},
		{"+1", 1, 0},
		{"123456.78", 12345678, -2},
		{".5", 5, -1},
		{"5.", 5, 0},
		{"007", 7, 0},
		{"-0", 0, 0},
		{"0.000", 0, -3},
		{"999999999999999999", 999999999999999999, 0},
		{"-0.999999999999999999", -999999999999999999, -18},
		{"00000000000000000000000001.5", 15, -1},
	}
	for _, c := range good {
		v, err := ParseDecimal(c.s)
		if err != nil {
			t.Errorf("ParseDecimal(%q): %v", c.s, err)
			continue
		}
		m, e, ok := v.Decimal()
		if !ok || m != c.mant || e != c.exp {
			t.Errorf("ParseDecimal(%q) = %d e%d (%v), want %d e%d", c.s, m, e, ok, c.mant, c.exp)
		}
	}
	bad := []string{"", "-", "+", ".", "-.", "1e5", "1.2.3", " 1", "1 ", "abc", "1,5", "0x10", "--1", "1-",
		"1234567890123456789", "0.1234567890123456789", "NaN", "Inf", "١٢"}
	for _, s := range bad {
		if v, err := ParseDecimal(s); !errors.Is(err, ErrDecimal) {
			t.Errorf("ParseDecimal(%q) = %v, %v; want ErrDecimal", s, v, err)
		} else if !strings.Contains(err.Error(), "drivers:") {
			t.Errorf("error %q is not prefixed", err)
		}
	}
}

func TestEqualAndRat(t *testing.T) {
	if !Dec(10, -1).Equal(Dec(1, 0)) || !Dec(100, -2).Equal(Dec(1, 0)) || !Dec(1, 2).Equal(Dec(100, 0)) {
		t.Error("decimals must compare by value")
	}
	if Dec(1, 0).Equal(Int(1)) {
		t.Error("different kinds must not be equal")
	}
	if Dec(-5, -2).Equal(Dec(5, -2)) {
		t.Error("sign ignored")
	}
	if !Float(math.NaN()).Equal(Float(math.NaN())) || Float(1).Equal(Float(2)) {
		t.Error("float equality")
	}
	if !Text("a").Equal(Text("a")) || Text("a").Equal(Text("b")) || !Bool(true).Equal(Bool(true)) || Bool(true).Equal(Bool(false)) {
		t.Error("text/bool equality")
	}
	if !(Value{}).Equal(Value{}) {
		t.Error("zero values")
	}
	for _, c := range []struct {
		v    Value
		want string
	}{
		{Dec(25, -1), "5/2"}, {Dec(-5, -2), "-1/20"}, {Dec(5, 2), "500/1"}, {Int(3), "3/1"}, {Dec(0, -9), "0/1"},
	} {
		if got := c.v.Rat(); got == nil || got.String() != c.want {
			t.Errorf("Rat(%v) = %v, want %s", c.v, got, c.want)
		}
	}
	for _, v := range []Value{Float(1), Bool(true), Text("1"), {}} {
		if v.Rat() != nil {
			t.Errorf("Rat(%v) should be nil", v)
		}
	}
	if _, ok := Int(1).AsFloat(); ok {
		t.Error("AsFloat of an int")
	}
	if i, ok := Int(-9).AsInt(); !ok || i != -9 {
		t.Error("AsInt")
	}
}

func TestScale(t *testing.T) {
	cases := []struct {
		raw           int64
		scale, offset Value
		want          string
	}{
		{253, Dec(1, -1), Value{}, "25.3"},
		{-5, Dec(1, -2), Value{}, "-0.05"},
		{74565, Dec(1, -2), Dec(1000, 0), "1745.65"},
		{3, Int(2), Dec(5, -3), "6.005"}, // offset finer than scale
		{7, Value{}, Value{}, "7"},
		{7, Value{}, Int(-10), "-3"},
		{12, Dec(25, -1), Dec(-1, -1), "29.9"},
		{math.MaxInt64 - 1, Int(1), Int(1), "MAX"},
		{math.MinInt64, Value{}, Value{}, "MIN"},
		{-1, Dec(1, 3), Value{}, "-1000"},
	}
	for _, c := range cases {
		v, err := Scale(c.raw, c.scale, c.offset)
		if err != nil {
			t.Errorf("Scale(%d, %v, %v): %v", c.raw, c.scale, c.offset, err)
			continue
		}
		want, err := ParseDecimal(c.want)
		switch c.want { // 19 digits: more than ParseDecimal takes
		case "MAX":
			want, err = Dec(math.MaxInt64, 0), nil
		case "MIN":
			want, err = Dec(math.MinInt64, 0), nil
		}
		if err != nil {
			t.Fatal(err)
		}
		if !v.Equal(want) || v.Kind() != KindDecimal {
			t.Errorf("Scale(%d, %v, %v) = %v, want %s", c.raw, c.scale, c.offset, v, c.want)
		}
	}
	if s := mustScale(t, 253, Dec(1, -1)).String(); s != "25.3" {
		t.Errorf("25.3 prints %q", s)
	}
	for _, c := range []struct {
		raw           int64
		scale, offset Value
		want          error
	}{
		{math.MaxInt64, Int(10), Value{}, ErrOverflow},
		{math.MaxInt64, Value{}, Int(1), ErrOverflow},
		{math.MinInt64, Int(-1), Value{}, ErrOverflow},
		{1, Dec(1, 0), Dec(1, -30), ErrOverflow}, // 1 000…001 × 10^-30 needs 31 digits
		{1, Float(0.1), Value{}, ErrDecimal},
		{1, Value{}, Text("1"), ErrDecimal},
		{1, Bool(true), Value{}, ErrDecimal},
	} {
		if _, err := Scale(c.raw, c.scale, c.offset); !errors.Is(err, c.want) {
			t.Errorf("Scale(%d, %v, %v): %v, want %v", c.raw, c.scale, c.offset, err, c.want)
		}
	}
}

func mustScale(t *testing.T, raw int64, scale Value) Value {
	t.Helper()
	v, err := Scale(raw, scale, Value{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// FuzzParseDecimal: whatever parses prints back to text that parses to the
// same number, and agrees with math/big's reading of the same text.
func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"0.05", "-123.45", "+1", ".5", "5.", "007", "-0", "999999999999999999", "1e5", "", "-", "1.2.3", "0.000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseDecimal(s)
		if err != nil {
			if !errors.Is(err, ErrDecimal) {
				t.Fatalf("unspecific error %v", err)
			}
			return
		}
		if v.Kind() != KindDecimal {
			t.Fatalf("kind %d", v.Kind())
		}
		w, err := ParseDecimal(v.String())
		if err != nil {
			t.Fatalf("%q → %q does not parse: %v", s, v.String(), err)
		}
		if !w.Equal(v) {
			t.Fatalf("%q → %q → %v", s, v.String(), w)
		}
		if r, ok := new(big.Rat).SetString(s); ok && r.Cmp(v.Rat()) != 0 {
			t.Fatalf("%q: big.Rat says %v, ParseDecimal %v", s, r, v.Rat())
		}
	})
}
