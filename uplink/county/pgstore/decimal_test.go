package pgstore_test

import (
	"math/big"
	"testing"

	"github.com/townlink/townlink/uplink/county/pgstore"
)

func TestDecimalText(t *testing.T) {
	for _, c := range []struct {
		mant int64
		exp  int32
		want string
	}{
		{12345678, -2, "123456.78"}, {5, 2, "500"}, {-5, -3, "-0.005"}, {0, -2, "0.00"}, {10, -1, "1.0"},
		{-9223372036854775808, 0, "-9223372036854775808"}, {7, 0, "7"}, {123, -3, "0.123"},
	} {
		if got := pgstore.DecimalText(c.mant, c.exp); got != c.want {
			t.Errorf("DecimalText(%d, %d) = %q, want %q", c.mant, c.exp, got, c.want)
		}
	}
}

// The text is exactly mant × 10^exp.
func FuzzDecimalText(f *testing.F) {
	f.Add(int64(12345678), int32(-2))
	f.Add(int64(-1), int32(-30))
	f.Fuzz(func(t *testing.T, mant int64, exp int32) {
		exp %= 64
		got := pgstore.DecimalText(mant, exp)
		r, ok := new(big.Rat).SetString(got)
		if !ok {
			t.Fatalf("DecimalText(%d, %d) = %q: not a number", mant, exp, got)
		}
		want := new(big.Rat).SetInt64(mant)
		p := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(exp))), nil))
		if exp >= 0 {
			want.Mul(want, p)
		} else {
			want.Quo(want, p)
		}
		if r.Cmp(want) != 0 {
			t.Fatalf("DecimalText(%d, %d) = %q, want %s", mant, exp, got, want.FloatString(int(abs(exp))))
		}
	})
}

func abs(e int32) int32 {
	if e < 0 {
		return -e
	}
	return e
}
