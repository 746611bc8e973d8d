package fieldmsg

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"

	"github.com/townlink/townlink/drivers"
)

// Two drivers, as kiosk and recorder instantiate the shared types.
var (
	errASchema = errors.New("alpha: schema violation")
	errAWrong  = errors.New("alpha: message for another device")
	errBSchema = errors.New("beta: schema violation")
	errBWrong  = errors.New("beta: message for another device")
)

type alpha struct{}

func (alpha) Name() string       { return "alpha" }
func (alpha) Schema() error      { return errASchema }
func (alpha) WrongDevice() error { return errAWrong }

type beta struct{}

func (beta) Name() string       { return "beta" }
func (beta) Schema() error      { return errBSchema }
func (beta) WrongDevice() error { return errBWrong }

var testNow = time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)

func mustParse(t *testing.T, b []byte) *Node {
	t.Helper()
	n, _, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse(%q): %v", b, err)
	}
	return n
}

func cborOf(t *testing.T, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The same message in JSON and in CBOR gives the same tree; numbers keep
// an exact text in both.
func TestParseJSONAndCBORAgree(t *testing.T) {
	js := []byte(` {"s":"hé","n":-7,"u":18446744073709551615,"d":3125e-2,"b":true,"z":null,"a":[1,"x",{"k":false}],"o":{"p":{}}}`)
	cb := cborOf(t, map[string]any{
		"s": "hé", "n": -7, "u": uint64(18446744073709551615),
		"d": cbor.Tag{Number: 4, Content: []any{-2, 3125}},
		"b": true, "z": nil,
		"a": []any{1, "x", map[string]any{"k": false}},
		"o": map[string]any{"p": map[string]any{}},
	})
	j, isCBOR, err := Parse(js)
	if err != nil || isCBOR {
		t.Fatalf("JSON: isCBOR %v, err %v", isCBOR, err)
	}
	c, isCBOR, err := Parse(cb)
	if err != nil || !isCBOR {
		t.Fatalf("CBOR: isCBOR %v, err %v", isCBOR, err)
	}
	if !reflect.DeepEqual(j, c) {
		t.Fatalf("trees differ:\nJSON %s\nCBOR %s", dump(j), dump(c))
	}
	if got := j.Obj["d"]; got.Kind != KindNum || got.Text != "3125e-2" {
		t.Errorf("d = %+v, want the literal 3125e-2", got)
	}
	if got := j.Obj["u"].Text; got != "18446744073709551615" {
		t.Errorf("u = %s", got)
	}
	if got := j.Obj["a"].Arr[2].Obj["k"]; got.Kind != KindBool || got.Bool {
		t.Errorf("a[2].k = %+v", got)
	}
	// A CBOR float becomes its shortest round-trip text; a big integer
	// (tag 2) its decimal text.
	big1 := new(big.Int).Lsh(big.NewInt(1), 70)
	f := mustParse(t, cborOf(t, map[string]any{"f": 0.1, "g": big1}))
	if f.Obj["f"].Text != "0.1" || f.Obj["g"].Text != big1.String() {
		t.Errorf("f = %s, g = %s", f.Obj["f"].Text, f.Obj["g"].Text)
	}
}

func dump(n *Node) string {
	var b strings.Builder
	var walk func(n *Node)
	walk = func(n *Node) {
		switch n.Kind {
		case KindObj:
			b.WriteString("{")
			for k, v := range n.Obj {
				b.WriteString(k + ":")
				walk(v)
				b.WriteString(",")
			}
			b.WriteString("}")
		case KindArr:
			b.WriteString("[")
			for _, v := range n.Arr {
				walk(v)
				b.WriteString(",")
			}
			b.WriteString("]")
		default:
			b.WriteString(n.Kind.String() + "(" + n.Show() + ")")
		}
	}
	walk(n)
	return b.String()
}

// Every refusal is a *SyntaxError with a specific reason.
func TestParseErrors(t *testing.T) {
	deepJSON := strings.Repeat(`{"a":`, MaxDepth+2) + "1" + strings.Repeat("}", MaxDepth+2)
	var deep any = 1
	for range MaxDepth + 1 {
		deep = map[string]any{"a": deep}
	}
	cases := []struct {
		name string
		in   []byte
		want string // reason, or its prefix when it ends in "…"
	}{
		{"empty", nil, "empty payload"},
		{"blank", []byte(" \n\t"), "empty payload"},
		{"array", []byte(`[1]`), "payload starts with byte 0x5B: neither a JSON object nor a CBOR map"},
		{"cbor after space", append([]byte(" "), cborOf(t, map[string]any{"a": 1})...), "payload starts with byte 0xA1: neither a JSON object nor a CBOR map"},
		{"json trailing", []byte(`{"a":1} {}`), "trailing data after the JSON object at byte 9"}, // the decoder's offset after the next token
		{"json dup", []byte(`{"a":1,"a":2}`), `duplicate key "a"`},
		{"json early end", []byte(`{"a":`), "JSON ends early"},
		{"json syntax", []byte(`{"a" 1}`), "JSON: …"},
		{"json not utf8", []byte("{\"a\":\"\xff\"}"), "JSON is not valid UTF-8"},
		{"json deep", []byte(deepJSON), "JSON nested deeper than 16 levels"},
		{"cbor dup", []byte{0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02}, "duplicate key a in CBOR map"},
		{"cbor trailing", append(cborOf(t, map[string]any{"a": 1}), 0x00), "trailing data after the CBOR map"},
		{"cbor bytes", cborOf(t, map[string]any{"a": []byte{1}}), "CBOR byte strings are not accepted (use text)"},
		{"cbor tag", cborOf(t, map[string]any{"a": cbor.Tag{Number: 99, Content: 1}}), "unsupported CBOR tag 99"},
		{"cbor bad decimal", cborOf(t, map[string]any{"a": cbor.Tag{Number: 4, Content: []any{"x", 1}}}), "CBOR tag 4 (decimal fraction) is not [exponent, mantissa]"},
		{"cbor nan", []byte{0xa1, 0x61, 'a', 0xf9, 0x7e, 0x00}, "CBOR float NaN is not a number"},
		{"cbor deep", cborOf(t, deep), "CBOR nested deeper than 16 levels"},
		{"cbor truncated", []byte{0xa1, 0x61}, "CBOR: …"},
		{"cbor int key", []byte{0xa1, 0x01, 0x01}, "CBOR: …"},
		// A count the input cannot hold is refused, not allocated.
		{"cbor huge map", []byte{0xba, 0x7f, 0xff, 0xff, 0xff, 0x61, 'a', 0x01}, "CBOR: …"},
		{"cbor huge array", []byte{0xa1, 0x61, 'a', 0x9a, 0x7f, 0xff, 0xff, 0xff, 0x01}, "CBOR: …"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, _, err := Parse(c.in)
			if err == nil {
				t.Fatalf("accepted: %s", dump(n))
			}
			var se *SyntaxError
			if !errors.As(err, &se) || se.Reason != err.Error() {
				t.Fatalf("error %T %v is not a *SyntaxError", err, err)
			}
			if p, ok := strings.CutSuffix(c.want, "…"); ok {
				if !strings.HasPrefix(err.Error(), p) || len(err.Error()) == len(p) {
					t.Fatalf("error %q, want %q followed by a cause", err, p)
				}
			} else if err.Error() != c.want {
				t.Fatalf("error %q, want %q", err, c.want)
			}
		})
	}
}

// manyKeys is a JSON object of n keys.
func manyKeys(n int) []byte {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"k%d":0`, i)
	}
	b.WriteString("}")
	return []byte(b.String())
}

// Only nesting is bounded: a long text, many keys and many elements, in
// JSON and in CBOR, parse whatever the payload's size (the field broker
// bounds it).
func TestParseNoSizeLimit(t *testing.T) {
	long := []byte(`{"notes":"` + strings.Repeat("é", 200<<10) + `"}`)
	n := mustParse(t, long)
	if len(n.Obj["notes"].Text) != 400<<10 {
		t.Errorf("notes of %d bytes", len(n.Obj["notes"].Text))
	}
	const many = 140000 // beyond fxamacker/cbor's default of 131072
	if n := mustParse(t, manyKeys(many)); len(n.Obj) != many {
		t.Errorf("JSON: %d keys", len(n.Obj))
	}
	if n := mustParse(t, []byte(`{"a":[`+strings.Repeat("0,", many-1)+`0]}`)); len(n.Obj["a"].Arr) != many {
		t.Errorf("JSON: %d elements", len(n.Obj["a"].Arr))
	}
	m := make(map[string]any, many)
	for i := range many {
		m[fmt.Sprint("k", i)] = 0
	}
	if n := mustParse(t, cborOf(t, m)); len(n.Obj) != many {
		t.Errorf("CBOR: %d keys", len(n.Obj))
	}
	if n := mustParse(t, cborOf(t, map[string]any{"a": make([]int, many)})); len(n.Obj["a"].Arr) != many {
		t.Errorf("CBOR: %d elements", len(n.Obj["a"].Arr))
	}
}

func TestParseDecimal(t *testing.T) {
	ok := []struct {
		in   string
		mant int64
		exp  int32
	}{
		{"0", 0, 0}, {"-0.000", 0, 0}, {"-31.25", -3125, -2}, {"3125e-2", 3125, -2}, {"1E3", 1, 3},
		{"+7", 7, 0}, {".5", 5, -1}, {"5.", 5, 0}, {"0012.50", 1250, -2}, {"999999999999999999", 999999999999999999, 0},
		// Trailing zeros beyond 18 digits are not significant.
		{"36.500000000000000000", 365, -1}, {"1.0000000000000000000", 1, 0}, {"-1000000000000000000000", -1, 21},
		{"123456789012345678.00", 123456789012345678, 0},
	}
	for _, c := range ok {
		m, e, err := ParseDecimal(c.in)
		if err != nil || m != c.mant || e != c.exp {
			t.Errorf("ParseDecimal(%q) = %d, %d, %v; want %d, %d", c.in, m, e, err, c.mant, c.exp)
		}
	}
	bad := map[string]string{
		"":                            `"" is not a number`,
		"-":                           `"-" is not a number`,
		".":                           `"." is not a number`,
		"1x":                          `"1x" is not a number`,
		"0x10":                        `"0x10" is not a number`,
		"1e":                          `"1e" has a bad exponent`,
		"1e99999999999":               `"1e99999999999" has a bad exponent`,
		"1234567890123456789":         `"1234567890123456789" has more than 18 significant digits`,
		"1.2345678901234567890":       `"1.2345678901234567890" has more than 18 significant digits`,
		"1" + strings.Repeat("0", 31): `"1` + strings.Repeat("0", 31) + `" is out of the decimal range`,
		"1e31":                        `"1e31" is out of the decimal range`,
		"1e-31":                       `"1e-31" is out of the decimal range`,
	}
	for in, want := range bad {
		if _, _, err := ParseDecimal(in); err == nil || err.Error() != want {
			t.Errorf("ParseDecimal(%q) error %v, want %s", in, err, want)
		}
	}
	ints := map[string]int64{"12": 12, "1.20e1": 12, "-5e2": -500, "120e-1": 12, "9.22e18": 9220000000000000000}
	for in, want := range ints {
		if v, err := ParseInteger(in); err != nil || v != want {
			t.Errorf("ParseInteger(%q) = %d, %v; want %d", in, v, err, want)
		}
	}
	for in, want := range map[string]string{"1.5": `"1.5" is not a whole number`, "1e19": `"1e19" does not fit in 64 bits`, "x": `"x" is not a number`} {
		if _, err := ParseInteger(in); err == nil || err.Error() != want {
			t.Errorf("ParseInteger(%q) error %v, want %s", in, err, want)
		}
	}
}

func TestShow(t *testing.T) {
	n := mustParse(t, []byte(`{"s":"a\"b","long":"`+strings.Repeat("x", 60)+`","o":{},"a":[],"z":null,"b":false,"n":1.50}`))
	want := map[string]string{"s": `"a\"b"`, "o": "{…}", "a": "[…]", "z": "null", "b": "false", "n": "1.50"}
	for k, w := range want {
		if got := n.Obj[k].Show(); got != w {
			t.Errorf("%s shows %s, want %s", k, got, w)
		}
	}
	if got := n.Obj["long"].Show(); got != `"`+strings.Repeat("x", 44)+"…" {
		t.Errorf("long shows %s", got)
	}
	// A cut never splits a character.
	for i := range 4 {
		s := strings.Repeat("x", i) + strings.Repeat("é", 30)
		got := (&Node{Kind: KindStr, Text: s}).Show()
		if !utf8.ValidString(got) || len(got) > 48 || !strings.HasSuffix(got, "…") {
			t.Errorf("%q shows %q", s, got)
		}
	}
	if got := Clip("abc", 4); got != "abc" {
		t.Errorf("Clip of a short text = %q", got)
	}
}

// An error text stays short whatever the message held: the event (a topic
// level) and a field path (keys of the message) are shortened.
func TestFieldErrorShort(t *testing.T) {
	e := &FieldError[alpha]{Device: "d", Event: strings.Repeat("e", 1000), Field: strings.Repeat("k", 1000), Value: "<redacted>", Reason: "why", Err: errASchema}
	got := e.Error()
	want := "alpha: d " + strings.Repeat("e", 77) + "…: " + strings.Repeat("k", 117) + "… = <redacted>: why"
	if got != want {
		t.Errorf("Error() = %q\nwant %q", got, want)
	}
}

func TestPlausible(t *testing.T) {
	from := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	until := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	if PlausibleFrom != from || PlausibleUntil != until {
		t.Fatalf("plausible range [%d, %d), want [%d, %d)", PlausibleFrom, PlausibleUntil, from, until)
	}
	for ms, want := range map[int64]bool{
		from - 1: false, from: true, until - 1: true, until: false, 0: false, -1: false,
		time.Date(2000, 1, 1, 0, 5, 0, 0, time.UTC).UnixMilli(): false, // an RTC after a power loss
		testNow.UnixMilli(): true, testNow.AddDate(30, 0, 0).UnixMilli(): true,
	} {
		if Plausible(ms) != want {
			t.Errorf("Plausible(%d) = %v", ms, !want)
		}
	}
}

// Skew: the message's time gives the offset either way; another time only
// counts when it is ahead; nothing is judged by a gateway without a clock.
func TestSkew(t *testing.T) {
	now := testNow.UnixMilli()
	lim := SkewLimit.Milliseconds()
	day := 24 * time.Hour.Milliseconds()
	cases := []struct {
		name   string
		gw     time.Time
		msg    []int64 // Message calls
		events []int64 // Event calls
		off    int64
		skewed bool
	}{
		{"nothing", testNow, nil, nil, 0, false},
		{"in step", testNow, []int64{now + 1500}, nil, 1500, false},
		{"at the limit ahead", testNow, []int64{now + lim}, nil, lim, false},
		{"at the limit behind", testNow, []int64{now - lim}, nil, -lim, false},
		{"ahead", testNow, []int64{now + lim + 1}, nil, lim + 1, true},
		{"behind", testNow, []int64{now - 2*day}, nil, -2 * day, true},
		{"gateway 2 days slow", testNow.Add(-48 * time.Hour), []int64{now}, nil, 2 * day, true},
		{"device clock reset", testNow, []int64{1000}, nil, 1000 - now, true},
		{"event in the past", testNow, nil, []int64{now - 30*day}, 0, false},
		{"event ahead, no message time", testNow, nil, []int64{now - day, now + 3*day}, 3 * day, true},
		{"event further ahead than the message", testNow, []int64{now}, []int64{now + 2*day}, 2 * day, true},
		{"event behind a skewed message", testNow, []int64{now + 2*day}, []int64{now + day}, 2 * day, true},
		{"gateway without a clock", time.UnixMilli(5000), []int64{now}, []int64{now}, 0, false},
		{"saturated", testNow, []int64{math.MinInt64}, nil, math.MinInt64, true},
	}
	for _, c := range cases {
		s := NewSkew(c.gw)
		for _, ms := range c.msg {
			s.Message(ms)
		}
		for _, ms := range c.events {
			s.Event(ms)
		}
		off, skewed := s.Offset()
		if skewed != c.skewed || (skewed && off != c.off) {
			t.Errorf("%s: offset %d skewed %v, want %d %v", c.name, off, skewed, c.off, c.skewed)
		}
		rd := drivers.Reading{Values: map[string]drivers.Value{}}
		s.Mark(&rd)
		v, has := rd.Values["clock_offset_ms"]
		if has != c.skewed || (rd.Quality == drivers.QualityClockSkew) != c.skewed {
			t.Errorf("%s: marked %+v", c.name, rd)
		}
		if i, _ := v.AsInt(); has && i != c.off {
			t.Errorf("%s: clock_offset_ms = %v, want %d", c.name, v, c.off)
		}
	}
}

// The error text carries the driver's prefix; each driver's FieldError is
// its own type for errors.As; errors.Is finds the sentinel.
func TestFieldErrorPerDriver(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{&FieldError[alpha]{Device: "d1", Event: "e.v", Reason: "unknown event", Err: errASchema}, "alpha: d1 e.v: unknown event"},
		{&FieldError[alpha]{Device: "d1", Event: "e.v", Field: "x", Reason: "missing (required)", Err: errASchema}, "alpha: d1 e.v: x: missing (required)"},
		{&FieldError[beta]{Device: "d2", Event: "e.v", Field: "o.x", Value: "3", Reason: "out of range", Err: errBSchema}, "beta: d2 e.v: o.x = 3: out of range"},
	}
	for _, c := range cases {
		if c.err.Error() != c.want {
			t.Errorf("Error() = %q, want %q", c.err, c.want)
		}
	}
	var fa *FieldError[alpha]
	var fb *FieldError[beta]
	if !errors.As(cases[0].err, &fa) || errors.As(cases[0].err, &fb) {
		t.Error("an alpha error must match *FieldError[alpha] only")
	}
	if !errors.As(cases[2].err, &fb) || errors.As(cases[2].err, &fa) {
		t.Error("a beta error must match *FieldError[beta] only")
	}
	if !errors.Is(cases[2].err, errBSchema) || errors.Is(cases[2].err, errASchema) {
		t.Error("errors.Is does not find the sentinel")
	}
}

func TestFieldsReaders(t *testing.T) {
	msg := []byte(`{"t":"hi","e":"b","i":42,"d":"x","dec":"1","f":12.5,"ts":1732950000000,"rfc":"2024-11-30T07:00:00Z",
		"h":"0a1b","an":"AB12","b":true,"z":null,"o":{"x":9},"big":1e40,"id":"SZ-100_234","E":"B","old":1000,
		"sp":"a b","dash":"-a","ctl":"a\u0001","kelvin":"\u212a"}`)
	top := mustParse(t, msg)
	ok := NewFields[alpha]("dev", "ev", top.Obj)
	if v, good := ok.Text("t", true, 8); !good || v != "hi" {
		t.Errorf("Text = %q %v", v, good)
	}
	if v, good := ok.Enum("e", true, "a", "b"); !good || v != "b" {
		t.Errorf("Enum = %q %v", v, good)
	}
	if v, good := ok.Int("i", true, 0, 100); !good || v != 42 {
		t.Errorf("Int = %d %v", v, good)
	}
	if v, good := ok.Decimal("f", true, Bound{Lo: "0", Hi: "12.5"}); !good || v.String() != "12.5" {
		t.Errorf("Decimal = %v %v", v, good)
	}
	if v, good := ok.Instant("rfc", true); !good || v != 1732950000000 {
		t.Errorf("Instant = %d %v", v, good)
	}
	if v, good := ok.Timestamp("ts"); !good || v != 1732950000000 {
		t.Errorf("Timestamp = %d %v", v, good)
	}
	if v, good := ok.Hex("h", true, 4); !good || v != "0a1b" {
		t.Errorf("Hex = %q %v", v, good)
	}
	if v, good := ok.Hex("an", true, 4); !good || v != "ab12" {
		t.Errorf("Hex of upper case = %q %v, want it in lower case", v, good)
	}
	if v, good := ok.ID("an", true, 4); !good || v != "AB12" {
		t.Errorf("ID = %q %v", v, good)
	}
	if v, good := ok.ID("id", true, 32); !good || v != "SZ-100_234" {
		t.Errorf("ID = %q %v", v, good)
	}
	if v, good := ok.Enum("E", true, "a", "b"); !good || v != "b" {
		t.Errorf("Enum of upper case = %q %v", v, good)
	}
	if v, good := ok.Timestamp("old"); !good || v != 1000 {
		t.Errorf("Timestamp of an implausible time = %d %v, want it returned", v, good)
	}
	if v, good := ok.Timestamp("rfc"); !good || v != 1732950000000 {
		t.Errorf("Timestamp of RFC 3339 = %d %v", v, good)
	}
	if v, good := ok.Bool("b", true); !good || !v {
		t.Errorf("Bool = %v %v", v, good)
	}
	if _, good := ok.Text("z", false, 8); good {
		t.Error("a null optional field was read")
	}
	if _, good := ok.Timestamp("absent"); good || ok.Err() != nil {
		t.Errorf("an absent ts: %v", ok.Err())
	}
	if err := ok.Err(); err != nil {
		t.Fatalf("Err = %v", err)
	}

	// Each failure, alone on a fresh reader: its exact text and sentinel.
	fails := []struct {
		read func(f *Fields[alpha])
		want string
	}{
		{func(f *Fields[alpha]) { f.Text("missing", true, 8) }, "alpha: dev ev: missing: missing (required)"},
		{func(f *Fields[alpha]) { f.Text("z", true, 8) }, "alpha: dev ev: z: missing (required)"},
		{func(f *Fields[alpha]) { f.Text("i", true, 8) }, "alpha: dev ev: i = 42: is a number, want a string"},
		{func(f *Fields[alpha]) { f.Text("t", true, 1) }, `alpha: dev ev: t = "hi": is longer than 1 bytes`},
		{func(f *Fields[alpha]) { f.Enum("e", true, "x", "y") }, `alpha: dev ev: e = "b": is not one of x, y`},
		{func(f *Fields[alpha]) { f.Int("i", true, 0, 9) }, "alpha: dev ev: i = 42: out of range [0, 9]"},
		{func(f *Fields[alpha]) { f.Int("f", true, 0, 99) }, `alpha: dev ev: f = 12.5: "12.5" is not a whole number`},
		{func(f *Fields[alpha]) { f.Decimal("f", true, Bound{Lo: "0", Hi: "12.5", HiOpen: true}) }, "alpha: dev ev: f = 12.5: out of range [0, 12.5)"},
		{func(f *Fields[alpha]) { f.Decimal("big", true, Bound{Lo: "0", Hi: "1"}) }, `alpha: dev ev: big = 1e40: "1e40" is out of the decimal range`},
		{func(f *Fields[alpha]) { f.Instant("i", true) }, "alpha: dev ev: i = 42: implausible time (before 2001 or from 2100 on)"},
		{func(f *Fields[alpha]) { f.Instant("t", true) }, `alpha: dev ev: t = "hi": not an RFC 3339 time with a zone`},
		{func(f *Fields[alpha]) { f.Instant("b", true) }, "alpha: dev ev: b = true: is a bool, want ms since the epoch or RFC 3339"},
		{func(f *Fields[alpha]) { f.Timestamp("t") }, `alpha: dev ev: t = "hi": not an RFC 3339 time with a zone`},
		{func(f *Fields[alpha]) { f.Timestamp("f") }, `alpha: dev ev: f = 12.5: not milliseconds since the epoch: "12.5" is not a whole number`},
		{func(f *Fields[alpha]) { f.Hex("h", true, 6) }, `alpha: dev ev: h = "0a1b": has 4 characters, want 6 hex digits`},
		{func(f *Fields[alpha]) { f.Hex("t", true, 2) }, `alpha: dev ev: t = "hi": byte 0 is not a hex digit`},
		{func(f *Fields[alpha]) { f.ID("h", true, 2) }, `alpha: dev ev: h = "0a1b": want 1 to 2 ASCII letters, digits, '-' or '_', starting with a letter or digit`},
		{func(f *Fields[alpha]) { f.ID("sp", true, 8) }, `alpha: dev ev: sp = "a b": want 1 to 8 ASCII letters, digits, '-' or '_', starting with a letter or digit`},
		{func(f *Fields[alpha]) { f.ID("dash", true, 8) }, `alpha: dev ev: dash = "-a": want 1 to 8 ASCII letters, digits, '-' or '_', starting with a letter or digit`},
		{func(f *Fields[alpha]) { f.ID("ctl", true, 8) }, `alpha: dev ev: ctl = "a\x01": want 1 to 8 ASCII letters, digits, '-' or '_', starting with a letter or digit`},
		{func(f *Fields[alpha]) { f.Enum("kelvin", true, "k") }, "alpha: dev ev: kelvin = \"\u212a\": is not one of k"},
		{func(f *Fields[alpha]) { f.Bool("o", true) }, "alpha: dev ev: o = {…}: is an object, want a bool"},
	}
	for _, c := range fails {
		f := NewFields[alpha]("dev", "ev", top.Obj)
		c.read(f)
		err := f.Err()
		if err == nil || err.Error() != c.want {
			t.Errorf("error %v\nwant %s", err, c.want)
			continue
		}
		if !errors.Is(err, errASchema) {
			t.Errorf("%v does not unwrap to the schema sentinel", err)
		}
	}

	// The first failure sticks; readers return zero values after it.
	f := NewFields[alpha]("dev", "ev", top.Obj)
	f.Int("i", true, 0, 9)
	f.Text("missing", true, 8)
	if v, good := f.Text("t", true, 8); good || v != "" {
		t.Errorf("read %q after a failure", v)
	}
	if !strings.Contains(f.Err().Error(), "i = 42") {
		t.Errorf("Err = %v, want the first failure", f.Err())
	}
	f.Fail(errAWrong, "x", nil, "later")
	if errors.Is(f.Err(), errAWrong) {
		t.Error("Fail replaced the first failure")
	}

	// Fork: a failure of its own.
	g := NewFields[alpha]("dev", "ev", top.Obj)
	h := g.Fork()
	h.Int("i", true, 0, 9)
	if h.Err() == nil || g.Err() != nil {
		t.Errorf("fork %v, parent %v", h.Err(), g.Err())
	}

	// Nested: a dotted path, and the failure sticks in the parent too.
	p := NewFields[alpha]("dev", "ev", top.Obj)
	o := p.Typed("o", true, KindObj)
	d := p.Nested("o", o.Obj)
	d.Int("x", true, 0, 5)
	d.Nested("deep", nil).Text("y", true, 8)
	for _, err := range []error{p.Err(), d.Err()} {
		if err == nil || err.Error() != "alpha: dev ev: o.x = 9: out of range [0, 5]" {
			t.Errorf("nested error %v", err)
		}
	}
	q := NewFields[alpha]("dev", "ev", top.Obj)
	q.Nested("o", o.Obj).Nested("deep", nil).Text("y", true, 8)
	if err := q.Err(); err == nil || err.Error() != "alpha: dev ev: o.deep.y: missing (required)" {
		t.Errorf("doubly nested error %v", err)
	}
}

func TestReadEnvelope(t *testing.T) {
	cases := []struct {
		msg, want string
	}{
		{`{"payload":1}`, "alpha: dev ev: payload = 1: is a number, want an object"},
		{`{"schema":"gw.v2","payload":{}}`, `alpha: dev ev: schema = "gw.v2": want "gw.v1"`},
		{`{"event":"other","payload":{}}`, `alpha: dev ev: event = "other": does not match the topic's event "ev"`},
		{`{"device_type":"meter","payload":{}}`, `alpha: dev ev: device_type = "meter": want "queue"`},
		{`{"seq":-1,"payload":{}}`, "alpha: dev ev: seq = -1: out of range [0, 4611686018427387904]"},
		{`{"device_id":"other","payload":{}}`, `alpha: dev ev: device_id = "other": names another device; a device may not speak for another`},
		{`{"device_id":"other"}`, `alpha: dev ev: device_id = "other": names another device; a device may not speak for another`},
		{`{"msg_id":""}`, `alpha: dev ev: msg_id = "": is empty`},
		{`{"ts":"now"}`, `alpha: dev ev: ts = "now": not an RFC 3339 time with a zone`},
		{`{"ts":true}`, `alpha: dev ev: ts = true: is a bool, want ms since the epoch or RFC 3339`},
	}
	for _, c := range cases {
		_, err := ReadEnvelope[alpha](mustParse(t, []byte(c.msg)), "dev", "ev", "queue")
		if err == nil || err.Error() != c.want {
			t.Errorf("%s: error %v\nwant %s", c.msg, err, c.want)
		}
	}
	_, err := ReadEnvelope[alpha](mustParse(t, []byte(`{"device_id":"x"}`)), "dev", "ev", "queue")
	if !errors.Is(err, errAWrong) {
		t.Errorf("wrong device: %v does not unwrap to WrongDevice", err)
	}

	env, err := ReadEnvelope[alpha](mustParse(t, []byte(`{"schema":"GW.V1","event":"ev","device_type":"Queue","seq":3,
		"device_id":"dev","msg_id":"m-1","ts":1732950000123,"payload":{"a":1}}`)), "dev", "ev", "queue")
	if err != nil || env.MsgID != "m-1" || !env.HasTS || env.TS != 1732950000123 {
		t.Fatalf("envelope %+v, %v", env, err)
	}
	if v, ok := env.Body.Int("a", true, 0, 1); !ok || v != 1 {
		t.Errorf("body a = %d %v", v, ok)
	}
	bare, err := ReadEnvelope[alpha](mustParse(t, []byte(`{"a":1,"ts":1000}`)), "dev", "ev", "queue")
	if err != nil || !bare.HasTS || bare.TS != 1000 || bare.MsgID != "" {
		t.Fatalf("bare %+v, %v (an implausible ts is read; the caller judges it)", bare, err)
	}
	rfc, err := ReadEnvelope[alpha](mustParse(t, []byte(`{"ts":"2024-11-30T07:00:00.5+08:00"}`)), "dev", "ev", "queue")
	if err != nil || !rfc.HasTS || rfc.TS != 1732921200500 {
		t.Fatalf("RFC 3339 ts %+v, %v", rfc, err)
	}
	if _, ok := bare.Body.Int("a", true, 0, 1); !ok {
		t.Error("the bare message is the body")
	}
}
