package wire

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

func TestValueString(t *testing.T) {
	for _, c := range []struct {
		v    Value
		want string
	}{
		{Dec(12345678, -2), "123456.78"},
		{Dec(2297, -1), "229.7"},
		{Dec(1230, -2), "12.30"},
		{Dec(-5, -3), "-0.005"},
		{Dec(5, 2), "500"},
		{Dec(0, -2), "0.00"},
		{Dec(0, 0), "0"},
		{Dec(-12345678, -2), "-123456.78"},
		{Dec(7, -1), "0.7"},
		{Dec(math.MinInt64, -3), "-9223372036854775.808"},
		{Dec(math.MaxInt64, 0), "9223372036854775807"},
		{Dec(1, math.MaxInt32), "1e2147483647"},
		{Dec(-1, math.MinInt32), "-1e-2147483648"},
		{Int(-42), "-42"},
		{Float(229.7), "229.7"},
		{Float(1e21), "1e+21"},
		{Bool(true), "true"},
		{Text("开"), "开"},
		{Value{}, "<none>"},
	} {
		if got := c.v.String(); got != c.want {
			t.Errorf("%#v.String() = %q, want %q", c.v, got, c.want)
		}
	}
}

func TestValueAccessors(t *testing.T) {
	if m, e, ok := Dec(12345678, -2).Decimal(); !ok || m != 12345678 || e != -2 {
		t.Fatal("Decimal")
	}
	if _, _, ok := Int(1).Decimal(); ok {
		t.Fatal("Int is not a decimal")
	}
	if i, ok := Int(-3).AsInt(); !ok || i != -3 {
		t.Fatal("AsInt")
	}
	if _, ok := Dec(1, 0).AsInt(); ok {
		t.Fatal("a decimal is not an int")
	}
	if f, ok := Float(0.5).AsFloat(); !ok || f != 0.5 {
		t.Fatal("AsFloat")
	}
	if b, ok := Bool(true).AsBool(); !ok || !b {
		t.Fatal("AsBool")
	}
	if s, ok := Text("x").AsText(); !ok || s != "x" {
		t.Fatal("AsText")
	}
	if Dec(10, -1).Equal(Dec(1, 0)) || !Dec(10, -1).Equal(Dec(10, -1)) || Float(0).Equal(Float(math.Copysign(0, -1))) || Int(1).Equal(Bool(true)) {
		t.Fatal("Equal")
	}
	if Dec(1, 0).Kind() != KindDecimal || Text("").Kind() != KindText || KindFloat.String() != "float" {
		t.Fatal("Kind")
	}
}

// TestValueEncodingMatchesLibrary: each Value's hand-written encoding equals
// fxamacker/cbor's core deterministic encoding of the same Go value (tag 4
// array for decimals), over random values, and round-trips.
func TestValueEncodingMatchesLibrary(t *testing.T) {
	g := newGen(5)
	for i := range 20000 {
		v := g.value()
		got, err := v.MarshalCBOR()
		if err != nil {
			t.Fatal(err)
		}
		var lib any
		switch v.Kind() {
		case KindDecimal:
			m, e, _ := v.Decimal()
			lib = cbor.Tag{Number: 4, Content: []int64{int64(e), m}}
		case KindInt:
			lib, _ = v.AsInt()
		case KindFloat:
			lib, _ = v.AsFloat()
		case KindBool:
			lib, _ = v.AsBool()
		case KindText:
			lib, _ = v.AsText()
		}
		want, err := modes.enc.Marshal(lib)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("value %d %v (%v): got %x, library %x", i, v, v.Kind(), got, want)
		}
		var back Value
		if err := back.UnmarshalCBOR(got); err != nil {
			t.Fatalf("value %d %x: %v", i, got, err)
		}
		if !back.Equal(v) {
			t.Fatalf("value %d: %v came back as %v", i, v, back)
		}
	}
}

// TestFloatShortest: every float16 bit pattern and many float32 patterns
// encode exactly as the library's shortest form (RFC 8949 §4.2.1).
func TestFloatShortest(t *testing.T) {
	check := func(f float64) {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return
		}
		got := appendFloat(nil, f)
		want, err := modes.enc.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%v (%x): got %x, library %x", f, math.Float64bits(f), got, want)
		}
	}
	for h := range 1 << 16 {
		f := float16To64(uint16(h))
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		check(f)
	}
	g := newGen(6)
	for range 200000 {
		check(float64(math.Float32frombits(g.r.Uint32())))
		check(math.Float64frombits(g.r.Uint64()) / 1e10)
	}
	// RFC 8949 Appendix A.
	for _, c := range []struct {
		f    float64
		want string
	}{{0, "f90000"}, {math.Copysign(0, -1), "f98000"}, {1.5, "f93e00"}, {65504, "f97bff"}, {100000, "fa47c35000"},
		{3.4028234663852886e+38, "fa7f7fffff"}, {1e300, "fb7e37e43c8800759c"}, {5.960464477539063e-8, "f90001"}, {0.00006103515625, "f90400"}, {-4, "f9c400"}, {-4.1, "fbc010666666666666"}} {
		if got := appendFloat(nil, c.f); !bytes.Equal(got, []byte(hx(c.want))) {
			t.Errorf("%v: got %x, want %s", c.f, got, c.want)
		}
	}
}

func TestValueRejects(t *testing.T) {
	for _, v := range []Value{Float(math.NaN()), Float(math.Inf(1)), Text("\xff"), {}} {
		if _, err := v.MarshalCBOR(); !errors.Is(err, ErrSchema) {
			t.Errorf("%#v: MarshalCBOR error %v", v, err)
		}
		r := Record{Dev: "d", Kind: KindPower, TSrc: TSrcDevice, Vals: map[string]Value{"x": v}}
		if _, err := EncodeRecord(&r); !errors.Is(err, ErrSchema) {
			t.Errorf("%#v: EncodeRecord error %v", v, err)
		}
	}
	var v Value
	if err := v.UnmarshalCBOR([]byte{0x01, 0x02}); !errors.Is(err, ErrMalformed) {
		t.Errorf("trailing byte: %v", err)
	}
	if err := v.UnmarshalCBOR([]byte{0x40}); !errors.Is(err, ErrSchema) {
		t.Errorf("bytes: %v", err)
	}
}
