package drivers

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Kind is the type held by a Value.
type Kind uint8

// Kinds of Value.
const (
	KindNone    Kind = iota // the zero Value: absent
	KindDecimal             // exact decimal: mantissa × 10^exp
	KindInt
	KindFloat
	KindBool
	KindText
)

// Value is one point's value. Meter registers are always decimals, never
// floats: Dec(12345678, -2) is exactly 123456.78.
type Value struct {
	kind Kind
	i    int64 // mantissa, int, or bool (0/1)
	exp  int32
	f    float64
	s    string
}

// Dec returns the exact decimal mant × 10^exp.
func Dec(mant int64, exp int32) Value { return Value{kind: KindDecimal, i: mant, exp: exp} }

// Int returns an integer value.
func Int(v int64) Value { return Value{kind: KindInt, i: v} }

// Float returns a floating-point value (for quantities that are floats on
// the device, e.g. IEEE-754 Modbus registers or GPS coordinates).
func Float(v float64) Value { return Value{kind: KindFloat, f: v} }

// Bool returns a boolean value.
func Bool(v bool) Value {
	var i int64
	if v {
		i = 1
	}
	return Value{kind: KindBool, i: i}
}

// Text returns a text value.
func Text(v string) Value { return Value{kind: KindText, s: v} }

// Kind reports the value's type.
func (v Value) Kind() Kind { return v.kind }

// Decimal returns mantissa and exponent of a decimal value.
func (v Value) Decimal() (mant int64, exp int32, ok bool) {
	return v.i, v.exp, v.kind == KindDecimal
}

// AsInt returns an integer value.
func (v Value) AsInt() (int64, bool) { return v.i, v.kind == KindInt }

// AsFloat returns a float value.
func (v Value) AsFloat() (float64, bool) { return v.f, v.kind == KindFloat }

// AsBool returns a boolean value.
func (v Value) AsBool() (bool, bool) { return v.i != 0, v.kind == KindBool }

// AsText returns a text value.
func (v Value) AsText() (string, bool) { return v.s, v.kind == KindText }

// Equal reports whether two values are of the same kind and equal. Decimals
// compare by value: Dec(10,-1) equals Dec(1,0).
func (v Value) Equal(w Value) bool {
	if v.kind != w.kind {
		return false
	}
	switch v.kind {
	case KindDecimal:
		return v.Rat().Cmp(w.Rat()) == 0
	case KindFloat:
		return v.f == w.f || (math.IsNaN(v.f) && math.IsNaN(w.f))
	case KindText:
		return v.s == w.s
	}
	return v.i == w.i
}

// Rat returns a decimal or int value as an exact rational (nil otherwise).
func (v Value) Rat() *big.Rat {
	switch v.kind {
	case KindInt:
		return new(big.Rat).SetInt64(v.i)
	case KindDecimal:
		r := new(big.Rat).SetInt64(v.i)
		p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs32(v.exp))), nil)
		if v.exp >= 0 {
			return r.Mul(r, new(big.Rat).SetInt(p))
		}
		return r.Quo(r, new(big.Rat).SetInt(p))
	}
	return nil
}

func abs32(e int32) int32 {
	if e < 0 {
		return -e
	}
	return e
}

// String formats the value: decimals exactly ("123456.78"), floats in the
// shortest form that round-trips.
func (v Value) String() string {
	switch v.kind {
	case KindDecimal:
		return formatDecimal(v.i, v.exp)
	case KindInt:
		return strconv.FormatInt(v.i, 10)
	case KindFloat:
		return strconv.FormatFloat(v.f, 'g', -1, 64)
	case KindBool:
		return strconv.FormatBool(v.i != 0)
	case KindText:
		return v.s
	}
	return "<none>"
}

func formatDecimal(mant int64, exp int32) string {
	neg := mant < 0
	var digits string
	if neg {
		digits = new(big.Int).Neg(big.NewInt(mant)).String()
	} else {
		digits = strconv.FormatInt(mant, 10)
	}
	switch {
	case exp >= 0:
		if mant != 0 {
			digits += strings.Repeat("0", int(exp))
		}
	default:
		n := int(-exp)
		if len(digits) <= n {
			digits = strings.Repeat("0", n-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-n] + "." + digits[len(digits)-n:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// ErrDecimal reports text that is not a plain decimal number.
var ErrDecimal = errors.New("drivers: not a decimal number")

// ParseDecimal parses "-123.45" (no exponent, no spaces) exactly.
func ParseDecimal(s string) (Value, error) {
	t := s
	neg := false
	if strings.HasPrefix(t, "-") || strings.HasPrefix(t, "+") {
		neg = t[0] == '-'
		t = t[1:]
	}
	intPart, frac, hasDot := strings.Cut(t, ".")
	if intPart == "" && (!hasDot || frac == "") {
		return Value{}, fmt.Errorf("%w: %q", ErrDecimal, s)
	}
	digits := intPart + frac
	for _, c := range digits {
		if c < '0' || c > '9' {
			return Value{}, fmt.Errorf("%w: %q", ErrDecimal, s)
		}
	}
	if len(strings.TrimLeft(digits, "0")) > 18 {
		return Value{}, fmt.Errorf("%w: %q has more than 18 significant digits", ErrDecimal, s)
	}
	m, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return Value{}, fmt.Errorf("%w: %q: %v", ErrDecimal, s, err)
	}
	if neg {
		m = -m
	}
	return Dec(m, -int32(len(frac))), nil
}

// ErrOverflow reports a decimal computation that does not fit in 64 bits.
var ErrOverflow = errors.New("drivers: decimal overflow")

// Scale returns raw × scale + offset exactly, where scale and offset are
// decimals (or ints). It fails with ErrOverflow when the result does not fit.
func Scale(raw int64, scale, offset Value) (Value, error) {
	sm, se, err := decParts(scale, 1)
	if err != nil {
		return Value{}, err
	}
	om, oe, err := decParts(offset, 0)
	if err != nil {
		return Value{}, err
	}
	r := new(big.Int).Mul(big.NewInt(raw), big.NewInt(sm))
	exp := se
	o := big.NewInt(om)
	// Bring both to the smaller exponent.
	if oe < exp {
		r.Mul(r, pow10(int(exp-oe)))
		exp = oe
	} else if oe > exp {
		o.Mul(o, pow10(int(oe-exp)))
	}
	r.Add(r, o)
	if !r.IsInt64() {
		return Value{}, fmt.Errorf("%w: %d × %s + %s", ErrOverflow, raw, scale, offset)
	}
	return Dec(r.Int64(), exp), nil
}

func decParts(v Value, def int64) (int64, int32, error) {
	switch v.kind {
	case KindNone:
		return def, 0, nil
	case KindDecimal:
		return v.i, v.exp, nil
	case KindInt:
		return v.i, 0, nil
	}
	return 0, 0, fmt.Errorf("%w: %s is not a decimal", ErrDecimal, v)
}

func pow10(n int) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}
