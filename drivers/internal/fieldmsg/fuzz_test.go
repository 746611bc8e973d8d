package fieldmsg

import (
	"encoding/json"
	"errors"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// toJSON renders a tree as JSON (keys sorted), numbers as their literal.
func toJSON(b *strings.Builder, n *Node) {
	switch n.Kind {
	case KindNull:
		b.WriteString("null")
	case KindBool:
		b.WriteString(strconv.FormatBool(n.Bool))
	case KindNum:
		b.WriteString(n.Text)
	case KindStr:
		q, _ := json.Marshal(n.Text)
		b.Write(q)
	case KindArr:
		b.WriteByte('[')
		for i, e := range n.Arr {
			if i > 0 {
				b.WriteByte(',')
			}
			toJSON(b, e)
		}
		b.WriteByte(']')
	case KindObj:
		keys := make([]string, 0, len(n.Obj))
		for k := range n.Obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			q, _ := json.Marshal(k)
			b.Write(q)
			b.WriteByte(':')
			toJSON(b, n.Obj[k])
		}
		b.WriteByte('}')
	}
}

// FuzzParse: Parse never panics; it refuses with a *SyntaxError with a
// reason, or returns an object whose every number is a valid JSON number
// and which, written back as JSON, parses to the same tree.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{}`, ` {"a":1,"b":[true,null,"x"],"c":{"d":-3125e-2}}`, `{"a":1} x`, `{"a":1,"a":2}`, `[1]`, `{"a":"\ud800"}`,
		`{"a":1.5e+300}`, strings.Repeat(`{"a":`, 20) + "1" + strings.Repeat("}", 20),
	} {
		f.Add([]byte(s))
	}
	for _, b := range [][]byte{
		{0xa0},
		{0xa1, 0x61, 'a', 0xc4, 0x82, 0x21, 0x19, 0x0c, 0x35},                         // {"a": 4([-2, 3125])}
		{0xbf, 0x61, 'a', 0xfb, 0x40, 0x3f, 0x4c, 0xcc, 0xcc, 0xcc, 0xcc, 0xcd, 0xff}, // indefinite map, float
		{0xa1, 0x61, 'a', 0xc2, 0x49, 1, 0, 0, 0, 0, 0, 0, 0, 0},                      // bignum
		{0xa1, 0x61, 'a', 0xc1, 0x1a, 0x67, 0x4a, 0xb6, 0xf0},                         // epoch time
		{0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02},
		{0xa1, 0x61, 'a', 0x41, 0x00},
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, _, err := Parse(b)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Reason == "" {
				t.Fatalf("error %T %q", err, err)
			}
			return
		}
		if n == nil || n.Kind != KindObj || n.Obj == nil {
			t.Fatalf("top is %+v", n)
		}
		var walk func(n *Node)
		walk = func(n *Node) {
			_ = n.Show()
			switch n.Kind {
			case KindNum:
				if !json.Valid([]byte(n.Text)) {
					t.Fatalf("number text %q is not a JSON number", n.Text)
				}
			case KindObj:
				for _, e := range n.Obj {
					walk(e)
				}
			case KindArr:
				for _, e := range n.Arr {
					walk(e)
				}
			}
		}
		walk(n)
		var sb strings.Builder
		toJSON(&sb, n)
		again, isCBOR, err := Parse([]byte(sb.String()))
		if err != nil || isCBOR {
			t.Fatalf("re-parse of %s: %v", sb.String(), err)
		}
		if !sameTree(n, again) {
			t.Fatalf("round trip differs: %s", sb.String())
		}
	})
}

// FuzzParseDecimal: an accepted literal means exactly mant × 10^exp (as
// math/big reads it), within 18 digits and exponents ±30; ParseInteger
// agrees with it for whole numbers.
func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"0", "-31.25", "3125e-2", "1E3", ".5", "5.", "1e31", "999999999999999999", "1x", "-", "1.20e1", "9.3e18"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, e, err := ParseDecimal(s)
		if err != nil {
			if !strings.Contains(err.Error(), lit(s)) {
				t.Fatalf("error %q does not name the literal", err)
			}
			return
		}
		if e < -30 || e > 30 || m > 999999999999999999 || m < -999999999999999999 {
			t.Fatalf("%q → %d e%d out of range", s, m, e)
		}
		want, ok := new(big.Rat).SetString(s)
		got := new(big.Rat).SetInt64(m)
		p := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(e))), nil))
		if e >= 0 {
			got.Mul(got, p)
		} else {
			got.Quo(got, p)
		}
		if ok && got.Cmp(want) != 0 {
			t.Fatalf("%q → %d e%d = %v, big.Rat says %v", s, m, e, got, want)
		}
		if v, err := ParseInteger(s); err == nil {
			if !got.IsInt() || got.Num().Cmp(big.NewInt(v)) != 0 {
				t.Fatalf("ParseInteger(%q) = %d, exact value %v", s, v, got)
			}
		} else if got.IsInt() && got.Num().IsInt64() {
			t.Fatalf("ParseInteger(%q) refused the whole number %v: %v", s, got, err)
		}
	})
}

func abs(e int32) int32 {
	if e < 0 {
		return -e
	}
	return e
}

// sameTree compares two trees; an empty array is the same however made.
func sameTree(a, b *Node) bool {
	if a.Kind != b.Kind || a.Bool != b.Bool || a.Text != b.Text || len(a.Obj) != len(b.Obj) || len(a.Arr) != len(b.Arr) {
		return false
	}
	for k, v := range a.Obj {
		if w, ok := b.Obj[k]; !ok || !sameTree(v, w) {
			return false
		}
	}
	for i := range a.Arr {
		if !sameTree(a.Arr[i], b.Arr[i]) {
			return false
		}
	}
	return true
}
