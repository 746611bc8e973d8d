package fieldmsg

import (
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
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

func TestParseDecimal(t *testing.T) {
	ok := []struct {
		in   string
		mant int64
		exp  int32
	}{
		{"0", 0, 0}, {"-0.000", 0, 0}, {"-31.25", -3125, -2}, {"3125e-2", 3125, -2}, {"1E3", 1, 3},
		{"+7", 7, 0}, {".5", 5, -1}, {"5.", 5, 0}, {"0012.50", 1250, -2}, {"999999999999999999", 999999999999999999, 0},
	}
	for _, c := range ok {
		m, e, err := ParseDecimal(c.in)
		if err != nil || m != c.mant || e != c.exp {
			t.Errorf("ParseDecimal(%q) = %d, %d, %v; want %d, %d", c.in, m, e, err, c.mant, c.exp)
		}
	}
	bad := map[string]string{
		"":                    `"" is not a number`,
		"-":                   `"-" is not a number`,
		".":                   `"." is not a number`,
		"1x":                  `"1x" is not a number`,
		"0x10":                `"0x10" is not a number`,
		"1e":                  `"1e" has a bad exponent`,
		"1e99999999999":       `"1e99999999999" has a bad exponent`,
		"1234567890123456789": `"1234567890123456789" has more than 18 significant digits`,
		"1e31":                `"1e31" is out of the decimal range`,
		"1e-31":               `"1e-31" is out of the decimal range`,
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
}

func TestEpoch2020(t *testing.T) {
	if want := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(); epoch2020 != want {
		t.Fatalf("epoch2020 = %d, want %d", epoch2020, want)
	}
	if Plausible(epoch2020-1, testNow) || !Plausible(epoch2020, testNow) ||
		!Plausible(testNow.Add(24*time.Hour).UnixMilli(), testNow) || Plausible(testNow.Add(24*time.Hour).UnixMilli()+1, testNow) {
		t.Fatal("Plausible does not span [2020, now + 1 day]")
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
		"h":"0a1b","an":"AB12","b":true,"z":null,"o":{"x":9},"big":1e40}`)
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
	if v, good := ok.Instant("rfc", true, testNow); !good || v != 1732950000000 {
		t.Errorf("Instant = %d %v", v, good)
	}
	if v, good := ok.Timestamp("ts", testNow); !good || v != 1732950000000 {
		t.Errorf("Timestamp = %d %v", v, good)
	}
	if v, good := ok.Hex("h", true, 4); !good || v != "0a1b" {
		t.Errorf("Hex = %q %v", v, good)
	}
	if v, good := ok.Alnum("an", true, 4); !good || v != "AB12" {
		t.Errorf("Alnum = %q %v", v, good)
	}
	if v, good := ok.Bool("b", true); !good || !v {
		t.Errorf("Bool = %v %v", v, good)
	}
	if _, good := ok.Text("z", false, 8); good {
		t.Error("a null optional field was read")
	}
	if _, good := ok.Timestamp("absent", testNow); good || ok.Err() != nil {
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
		{func(f *Fields[alpha]) { f.Instant("i", true, testNow) }, "alpha: dev ev: i = 42: implausible time (before 2020 or more than a day ahead)"},
		{func(f *Fields[alpha]) { f.Instant("t", true, testNow) }, `alpha: dev ev: t = "hi": not an RFC 3339 time with a zone`},
		{func(f *Fields[alpha]) { f.Instant("b", true, testNow) }, "alpha: dev ev: b = true: is a bool, want ms since the epoch or RFC 3339"},
		{func(f *Fields[alpha]) { f.Timestamp("t", testNow) }, `alpha: dev ev: t = "hi": is a string, want ms since the epoch`},
		{func(f *Fields[alpha]) { f.Timestamp("f", testNow) }, `alpha: dev ev: f = 12.5: not milliseconds since the epoch: "12.5" is not a whole number`},
		{func(f *Fields[alpha]) { f.Hex("h", true, 6) }, `alpha: dev ev: h = "0a1b": has 4 characters, want 6 lowercase hex digits`},
		{func(f *Fields[alpha]) { f.Hex("an", true, 4) }, `alpha: dev ev: an = "AB12": byte 0 is not a lowercase hex digit`},
		{func(f *Fields[alpha]) { f.Alnum("h", true, 2) }, `alpha: dev ev: h = "0a1b": want 1 to 2 ASCII letters or digits`},
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
		{`{"ts":"now"}`, `alpha: dev ev: ts = "now": is a string, want ms since the epoch`},
	}
	for _, c := range cases {
		_, err := ReadEnvelope[alpha](mustParse(t, []byte(c.msg)), "dev", "ev", "queue", testNow)
		if err == nil || err.Error() != c.want {
			t.Errorf("%s: error %v\nwant %s", c.msg, err, c.want)
		}
	}
	_, err := ReadEnvelope[alpha](mustParse(t, []byte(`{"device_id":"x"}`)), "dev", "ev", "queue", testNow)
	if !errors.Is(err, errAWrong) {
		t.Errorf("wrong device: %v does not unwrap to WrongDevice", err)
	}

	env, err := ReadEnvelope[alpha](mustParse(t, []byte(`{"schema":"gw.v1","event":"ev","device_type":"queue","seq":3,
		"device_id":"dev","msg_id":"m-1","ts":1732950000123,"payload":{"a":1}}`)), "dev", "ev", "queue", testNow)
	if err != nil || env.MsgID != "m-1" || !env.HasTS || env.TS != 1732950000123 {
		t.Fatalf("envelope %+v, %v", env, err)
	}
	if v, ok := env.Body.Int("a", true, 0, 1); !ok || v != 1 {
		t.Errorf("body a = %d %v", v, ok)
	}
	bare, err := ReadEnvelope[alpha](mustParse(t, []byte(`{"a":1,"ts":1000}`)), "dev", "ev", "queue", testNow)
	if err != nil || bare.HasTS || bare.MsgID != "" {
		t.Fatalf("bare %+v, %v (an implausible ts is ignored)", bare, err)
	}
	if _, ok := bare.Body.Int("a", true, 0, 1); !ok {
		t.Error("the bare message is the body")
	}
}
