package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is the type held by a Value.
type Kind uint8

// Kinds of Value.
const (
	KindNone    Kind = iota // the zero Value; never valid on the wire
	KindDecimal             // mant × 10^exp, CBOR tag 4 [exp, mant]
	KindInt
	KindFloat
	KindBool
	KindText
)

func (k Kind) String() string {
	switch k {
	case KindNone:
		return "none"
	case KindDecimal:
		return "decimal"
	case KindInt:
		return "int"
	case KindFloat:
		return "float"
	case KindBool:
		return "bool"
	case KindText:
		return "text"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one point's value on the wire: a decimal fraction, an int, a
// float, a bool or a text. Meter registers are decimals, never floats.
type Value struct {
	kind Kind
	i    int64 // int, mantissa, or bool (0/1)
	exp  int32
	f    float64
	s    string
}

// Dec returns the exact decimal mant × 10^exp: Dec(12345678, -2) is
// 123456.78, encoded as 4([-2, 12345678]).
func Dec(mant int64, exp int32) Value { return Value{kind: KindDecimal, i: mant, exp: exp} }

// Int returns an integer value.
func Int(v int64) Value { return Value{kind: KindInt, i: v} }

// Float returns a floating-point value. NaN and infinities cannot be
// encoded (the contract carries numbers, and most platforms store JSON).
func Float(v float64) Value { return Value{kind: KindFloat, f: v} }

// Bool returns a boolean value.
func Bool(v bool) Value {
	if v {
		return Value{kind: KindBool, i: 1}
	}
	return Value{kind: KindBool}
}

// Text returns a text value (valid UTF-8).
func Text(v string) Value { return Value{kind: KindText, s: v} }

// Kind reports the value's type.
func (v Value) Kind() Kind { return v.kind }

// Decimal returns mantissa and exponent of a decimal value.
func (v Value) Decimal() (mant int64, exp int32, ok bool) {
	if v.kind != KindDecimal {
		return 0, 0, false
	}
	return v.i, v.exp, true
}

// AsInt returns an integer value.
func (v Value) AsInt() (int64, bool) {
	if v.kind != KindInt {
		return 0, false
	}
	return v.i, true
}

// AsFloat returns a float value.
func (v Value) AsFloat() (float64, bool) {
	if v.kind != KindFloat {
		return 0, false
	}
	return v.f, true
}

// AsBool returns a boolean value.
func (v Value) AsBool() (bool, bool) {
	if v.kind != KindBool {
		return false, false
	}
	return v.i != 0, true
}

// AsText returns a text value.
func (v Value) AsText() (string, bool) {
	if v.kind != KindText {
		return "", false
	}
	return v.s, true
}

// Equal reports whether v and w are the same value with the same wire
// encoding. Dec(10, -1) and Dec(1, 0) are NOT equal (they are different
// records and hash differently); Float(0) and Float(-0) are not equal.
func (v Value) Equal(w Value) bool {
	if v.kind != w.kind {
		return false
	}
	switch v.kind {
	case KindDecimal:
		return v.i == w.i && v.exp == w.exp
	case KindInt, KindBool:
		return v.i == w.i
	case KindFloat:
		return math.Float64bits(v.f) == math.Float64bits(w.f)
	case KindText:
		return v.s == w.s
	}
	return true
}

// maxPlainExp bounds the zeros String writes out; beyond it a decimal is
// written as <mant>e<exp>.
const maxPlainExp = 40

// String formats the value; decimals exactly ("123456.78", "12.30",
// "-0.005", "500"), floats in the shortest form that round-trips, text
// as is.
func (v Value) String() string {
	switch v.kind {
	case KindDecimal:
		return decString(v.i, v.exp)
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

func decString(mant int64, exp int32) string {
	neg := mant < 0
	// Absolute value as unsigned, so math.MinInt64 works.
	u := uint64(mant)
	if neg {
		u = -u
	}
	digits := strconv.FormatUint(u, 10)
	sign := ""
	if neg {
		sign = "-"
	}
	switch {
	case exp == 0:
		return sign + digits
	case exp > 0 && exp <= maxPlainExp:
		return sign + digits + strings.Repeat("0", int(exp))
	case exp < 0 && -int64(exp) <= maxPlainExp+int64(len(digits)):
		point := len(digits) + int(exp) // digits before the point
		if point > 0 {
			return sign + digits[:point] + "." + digits[point:]
		}
		return sign + "0." + strings.Repeat("0", -point) + digits
	}
	return sign + digits + "e" + strconv.FormatInt(int64(exp), 10)
}

// check reports why v cannot be encoded, or nil.
func (v Value) check() error {
	switch v.kind {
	case KindDecimal, KindInt, KindBool:
		return nil
	case KindFloat:
		if math.IsNaN(v.f) || math.IsInf(v.f, 0) {
			return errors.New("float is NaN or infinite")
		}
		return nil
	case KindText:
		if !utf8.ValidString(v.s) {
			return errors.New("text is not valid UTF-8")
		}
		return nil
	}
	return errors.New("zero Value (no kind)")
}

// MarshalCBOR encodes v in core deterministic form.
func (v Value) MarshalCBOR() ([]byte, error) {
	if err := v.check(); err != nil {
		return nil, &Error{Err: ErrSchema, Msg: err.Error()}
	}
	return v.appendCBOR(nil), nil
}

// appendCBOR appends the deterministic encoding of a checked value.
func (v Value) appendCBOR(dst []byte) []byte {
	switch v.kind {
	case KindDecimal:
		dst = append(dst, 0xc4, 0x82) // tag 4, array of 2
		dst = appendInt(dst, int64(v.exp))
		return appendInt(dst, v.i)
	case KindInt:
		return appendInt(dst, v.i)
	case KindFloat:
		return appendFloat(dst, v.f)
	case KindBool:
		if v.i != 0 {
			return append(dst, 0xf5)
		}
		return append(dst, 0xf4)
	case KindText:
		return appendText(dst, v.s)
	}
	return dst
}

// appendFloat appends the shortest of float16, float32 and float64 that
// holds f exactly (RFC 8949 §4.2.1 with §4.1 preferred serialization),
// including float16 subnormals. f is finite.
func appendFloat(dst []byte, f float64) []byte {
	f32 := float32(f)
	if float64(f32) != f {
		return binary.BigEndian.AppendUint64(append(dst, 0xfb), math.Float64bits(f))
	}
	if h, ok := float16Exact(f32); ok {
		return binary.BigEndian.AppendUint16(append(dst, 0xf9), h)
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xfa), math.Float32bits(f32))
}

// float16Exact converts a finite float32 to IEEE 754 binary16 if that
// loses nothing.
func float16Exact(f float32) (uint16, bool) {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127
	mant := b & 0x7fffff
	switch {
	case b&0x7fffffff == 0: // ±0
		return sign, true
	case exp == -127: // float32 subnormal: far below float16's range
		return 0, false
	case exp >= -14 && exp <= 15: // float16 normal
		if mant&0x1fff != 0 {
			return 0, false
		}
		return sign | uint16(exp+15)<<10 | uint16(mant>>13), true
	case exp >= -24 && exp < -14: // float16 subnormal: m × 2^-24
		sig := mant | 1<<23
		shift := uint(-exp - 1) // 14..23
		if sig&(1<<shift-1) != 0 {
			return 0, false
		}
		return sign | uint16(sig>>shift), true
	}
	return 0, false
}

// float16To64 widens an IEEE 754 binary16 value.
func float16To64(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h >> 10 & 0x1f)
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(mant, -24)
	case 31:
		if mant == 0 {
			return math.Inf(int(sign))
		}
		return math.NaN()
	}
	return sign * math.Ldexp(1024+mant, exp-25)
}

// UnmarshalCBOR decodes one value: an int (major type 0 or 1, within
// int64), a float (16, 32 or 64 bits, finite), a bool, a text string, or
// a decimal fraction 4([exponent, mantissa]) with an int32 exponent and an
// int64 mantissa. Anything else is an error naming what was found.
func (v *Value) UnmarshalCBOR(data []byte) error {
	if err := checkInput(data); err != nil {
		return err
	}
	d, err := decodeValue(data)
	if err != nil {
		return schemaErr("", err.Error())
	}
	*v = d
	return nil
}

// decodeValue decodes one well-formed item.
func decodeValue(raw []byte) (Value, error) {
	major, arg, n, err := head(raw, 0)
	if err != nil {
		return Value{}, err
	}
	switch major {
	case majUint, majNeg:
		i, err := wantInt(raw)
		if err != nil {
			return Value{}, err
		}
		return Int(i), nil
	case majText:
		s, err := wantText(raw)
		if err != nil {
			return Value{}, err
		}
		if !utf8.ValidString(s) {
			return Value{}, errors.New("text is not valid UTF-8")
		}
		return Text(s), nil
	case majTag:
		if arg != 4 {
			return Value{}, fmt.Errorf("%s not allowed (values are int, float, bool, text or tag 4 decimal fraction)", describe(raw))
		}
		return decodeDecimal(raw[n:])
	case majOther:
		switch raw[0] {
		case 0xf4:
			return Bool(false), nil
		case 0xf5:
			return Bool(true), nil
		case 0xf9, 0xfa, 0xfb:
			var f float64
			switch raw[0] {
			case 0xf9:
				f = float16To64(uint16(arg))
			case 0xfa:
				f = float64(math.Float32frombits(uint32(arg)))
			default:
				f = math.Float64frombits(arg)
			}
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return Value{}, errors.New("float is NaN or infinite")
			}
			return Float(f), nil
		}
	}
	return Value{}, fmt.Errorf("%s not allowed (values are int, float, bool, text or tag 4 decimal fraction)", describe(raw))
}

// decodeDecimal decodes the content of tag 4: [exponent, mantissa].
func decodeDecimal(c []byte) (Value, error) {
	major, arg, n, err := head(c, 0)
	if err != nil || major != majArray || arg != 2 {
		return Value{}, fmt.Errorf("decimal fraction: want [exponent, mantissa], got %s", describe(c))
	}
	c = c[n:]
	end, err := skip(c, 0, 0)
	if err != nil {
		return Value{}, fmt.Errorf("decimal fraction: %v", err)
	}
	e, err := wantInt(c[:end])
	if err != nil {
		return Value{}, fmt.Errorf("decimal fraction exponent: %v", err)
	}
	if e < math.MinInt32 || e > math.MaxInt32 {
		return Value{}, fmt.Errorf("decimal fraction exponent %d out of int32 range", e)
	}
	m := c[end:]
	if mj, marg, _, err := head(m, 0); err == nil && mj == majTag && (marg == 2 || marg == 3) {
		return Value{}, errors.New("decimal fraction mantissa: bignum (tag 2/3) not supported; mantissa must fit int64")
	}
	mant, err := wantInt(m)
	if err != nil {
		return Value{}, fmt.Errorf("decimal fraction mantissa: %v", err)
	}
	return Dec(mant, int32(e)), nil
}
