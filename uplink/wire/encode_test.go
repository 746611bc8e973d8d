package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// The reference encoders: EncodeRecord and Encode as they were before the
// hand-written encoder (validation copied verbatim, then fxamacker/cbor's
// reflection over the struct tags), and an independent one that builds a
// generic map and marshals it with a fresh cbor.CoreDetEncOptions() mode
// (so it depends neither on the struct tags nor on Value.MarshalCBOR).

func refEncodeRecord(r *Record) ([]byte, error) {
	if err := refCheckRecord(r); err != nil {
		return nil, err
	}
	p, err := modes.enc.Marshal(r)
	if err != nil {
		return nil, &Error{Err: ErrSchema, Msg: err.Error()}
	}
	return p, nil
}

func refEncodeBatch(b *Batch) ([]byte, error) {
	if err := checkBatch(b); err != nil {
		return nil, err
	}
	p, err := modes.enc.Marshal(b)
	if err != nil {
		return nil, &Error{Err: ErrSchema, Msg: err.Error()}
	}
	return p, nil
}

// refCheckRecord is checkRecord before it was split for the encoder.
func refCheckRecord(r *Record) error {
	if err := validText("dev", r.Dev); err != nil {
		return err
	}
	if !isRecordKind(r.Kind) {
		return schemaErr("kind", fmt.Sprintf("unknown kind %q", r.Kind))
	}
	if !isTSrc(r.TSrc) {
		return schemaErr("tsrc", fmt.Sprintf("unknown tsrc %q (want device, gateway or unsynced)", r.TSrc))
	}
	if !utf8.ValidString(r.Grid) {
		return schemaErr("grid", "not valid UTF-8")
	}
	if err := refCheckVals("vals", r.Vals); err != nil {
		return err
	}
	if len(r.Prev) != 0 && len(r.Prev) != HashSize {
		return schemaErr("prev", fmt.Sprintf("%d bytes, want %d", len(r.Prev), HashSize))
	}
	if len(r.Hash) != 0 && len(r.Hash) != HashSize {
		return schemaErr("hash", fmt.Sprintf("%d bytes, want %d", len(r.Hash), HashSize))
	}
	if r.Kind == KindGap {
		return checkGap(r)
	}
	return nil
}

func refCheckVals(name string, vals map[string]Value) error {
	if len(vals) > maxMapPairs {
		return &Error{Err: ErrTooLarge, Path: name, Msg: fmt.Sprintf("%d points, limit %d", len(vals), maxMapPairs)}
	}
	for k, v := range vals {
		if msg := textProblem(k); msg != "" {
			return schemaErr(keyed(name, k), msg)
		}
		if err := v.check(); err != nil {
			return schemaErr(keyed(name, k), err.Error())
		}
	}
	return nil
}

// genericMode is the library's core deterministic mode with its defaults.
func genericMode(t testing.TB) cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		t.Fatal(err)
	}
	return em
}

// genericRecord is r as a map of plain Go values, with the optional keys
// left out when empty.
func genericRecord(r *Record) map[string]any {
	vals := make(map[string]any, len(r.Vals))
	for k, v := range r.Vals {
		switch v.Kind() {
		case KindDecimal:
			m, e, _ := v.Decimal()
			vals[k] = cbor.Tag{Number: 4, Content: []int64{int64(e), m}}
		case KindInt:
			vals[k], _ = v.AsInt()
		case KindFloat:
			vals[k], _ = v.AsFloat()
		case KindBool:
			vals[k], _ = v.AsBool()
		case KindText:
			vals[k], _ = v.AsText()
		}
	}
	m := map[string]any{"seq": r.Seq, "dev": r.Dev, "kind": r.Kind, "ts": r.TS, "tsrc": r.TSrc, "vals": vals}
	if r.Grid != "" {
		m["grid"] = r.Grid
	}
	if r.Q != 0 {
		m["q"] = r.Q
	}
	if len(r.Prev) != 0 {
		m["prev"] = r.Prev
	}
	if len(r.Hash) != 0 {
		m["hash"] = r.Hash
	}
	if len(r.Sig) != 0 {
		m["sig"] = r.Sig
	}
	if r.Alg != "" {
		m["alg"] = r.Alg
	}
	return m
}

// Edge cases for the generator: every head width (0..23, 1, 2, 4 and 8
// bytes), both signs.
var (
	edgeUints = []uint64{0, 1, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, math.MaxInt64, 1<<64 - 1}
	edgeInts  = []int64{0, 1, -1, 23, -24, 24, -25, 255, -256, 256, -257, 65535, -65536, 65536, -65537,
		1<<32 - 1, -(1 << 32), 1 << 32, -(1 << 32) - 1, math.MaxInt64, math.MinInt64, math.MaxInt32, math.MinInt32}
	edgeExps   = []int32{0, 1, -1, 23, -24, 24, -25, 255, -256, 256, -257, 65535, -65536, 65536, -65537, math.MaxInt32, math.MinInt32}
	edgeFloats = []float64{
		0, math.Copysign(0, -1), 1, -1, 0.5, 1.5, 1.0 / 3, 0.1, 229.7,
		65504, -65504, 65505, 65520, 131008, // float16 max, just above (float32), float16 overflow boundary
		5.960464477539063e-08, -5.960464477539063e-08, 2.9802322387695312e-08, // float16 smallest subnormal, half of it
		6.103515625e-05, 6.097555160522461e-05, // float16 smallest normal, largest subnormal
		1.401298464324817e-45, 1.1754943508222875e-38, // float32 smallest subnormal and normal
		math.MaxFloat32, -math.MaxFloat32, math.MaxFloat32 * 2, 3.4028235677973366e+38,
		math.SmallestNonzeroFloat64, math.MaxFloat64, -math.MaxFloat64, 1e300, 1e-300, 16777217,
	}
	edgeKeys = []string{
		"a", "b", "z", "ab", "abc", "ba", "A", "~", "\u00e9", "\u00ea", "是否", "电能表", "😀", "a😀",
		strings.Repeat("k", 22), strings.Repeat("k", 23), strings.Repeat("k", 24), strings.Repeat("k", 25),
		strings.Repeat("k", 23) + "l", strings.Repeat("k", 22) + "\u00e9", strings.Repeat("电", 8), strings.Repeat("电", 9),
		strings.Repeat("k", 255), strings.Repeat("k", 254) + "l", strings.Repeat("k", 256), strings.Repeat("j", 256), strings.Repeat("k", 300),
	}
	edgeTexts = []string{"", "x", strings.Repeat("t", 23), strings.Repeat("t", 24), strings.Repeat("t", 255),
		strings.Repeat("t", 256), strings.Repeat("t", 600), "DDS1531 电能表", strings.Repeat("电", 100)}
)

func pick[T any](g *gen, s []T) T { return s[g.r.IntN(len(s))] }

// edgeValue returns values at the encoding boundaries.
func (g *gen) edgeValue() Value {
	switch g.r.IntN(6) {
	case 0:
		return Dec(pick(g, edgeInts), pick(g, edgeExps))
	case 1:
		return Int(pick(g, edgeInts))
	case 2:
		f := pick(g, edgeFloats)
		if g.r.IntN(2) == 0 {
			f = -f
		}
		return Float(f)
	case 3:
		return Text(pick(g, edgeTexts))
	case 4:
		return Bool(g.r.IntN(2) == 0)
	}
	return g.value()
}

// edgeRecord returns a valid record built for the encoder's corners: no
// points, many points (beyond the stack buffers), long and non-ASCII
// keys, keys of equal length, values at every head width, large texts,
// prev and/or hash, gap records.
func (g *gen) edgeRecord(i int) Record {
	r := g.record(pick(g, edgeUints), i%7 == 0)
	if i%3 == 0 {
		r.Q = pick(g, edgeUints)
	}
	if i%5 == 0 {
		r.TS = pick(g, edgeInts)
	}
	if i%11 == 0 {
		r.Grid = pick(g, edgeTexts)
	}
	switch i % 13 {
	case 0:
		r.Prev = nil // hash only
	case 1:
		r.Hash = []byte{} // prev only (when evidence); empty is omitted
	}
	n := g.r.IntN(8)
	switch {
	case i%17 == 0:
		r.Vals = nil
		return r
	case i%19 == 0:
		r.Vals = map[string]Value{}
		return r
	case i%23 == 0:
		n = smallVals + 1 + g.r.IntN(40)
	case i%997 == 0:
		n = 500 + g.r.IntN(500)
	}
	r.Vals = make(map[string]Value, n)
	for range n {
		var k string
		switch g.r.IntN(3) {
		case 0:
			k = pick(g, edgeKeys)
		case 1:
			k = g.text(40)
		default:
			k = pick(g, genNames)
		}
		if k == "" {
			k = "e"
		}
		r.Vals[k] = g.edgeValue()
	}
	if i%29 == 0 {
		r = GapRecord("gw-"+g.text(5), 1+uint64(g.r.IntN(1000)), 1000+uint64(g.r.IntN(1000)), pick(g, edgeTexts), r.TS)
		r.Seq = pick(g, edgeUints)
	}
	return r
}

// TestEncodeRecordMatchesLibrary: EncodeRecord and AppendRecord write
// exactly the bytes of the library-based encoder and of a generic map
// marshalled in core deterministic mode, over 20k random records from the
// usual generator and 20k built for the corners; the output decodes back
// to the record.
func TestEncodeRecordMatchesLibrary(t *testing.T) {
	g := newGen(8)
	em := genericMode(t)
	buf := []byte("prefix")
	var sawMany, sawHuge, sawEmpty, sawLongKey bool
	for i := range 40000 {
		var r Record
		if i%2 == 0 {
			r = g.record(g.r.Uint64()>>uint(g.r.IntN(64)), i%10 == 0)
		} else {
			r = g.edgeRecord(i)
		}
		got, err := EncodeRecord(&r)
		if err != nil {
			t.Fatalf("record %d: %v\n%+v", i, err, r)
		}
		want, err := refEncodeRecord(&r)
		if err != nil {
			t.Fatalf("record %d: reference: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("record %d differs from the library encoding:\n got %x\nwant %x\n%+v", i, got, want, r)
		}
		generic, err := em.Marshal(genericRecord(&r))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, generic) {
			t.Fatalf("record %d differs from the generic map encoding:\n got %x\nwant %x\n%+v", i, got, generic, r)
		}
		buf, err = AppendRecord(buf[:6], &r)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:6]) != "prefix" || !bytes.Equal(buf[6:], want) {
			t.Fatalf("record %d: AppendRecord:\n got %x\nwant prefix + %x", i, buf, want)
		}
		buf, err = AppendRecordPoints(buf[:6], &Record{Seq: r.Seq, Dev: r.Dev, Kind: r.Kind, TS: r.TS, TSrc: r.TSrc, Grid: r.Grid,
			Q: r.Q, Prev: r.Prev, Hash: r.Hash, Sig: r.Sig, Alg: r.Alg}, pointsOf(r.Vals))
		if err != nil {
			t.Fatalf("record %d: AppendRecordPoints: %v", i, err)
		}
		if string(buf[:6]) != "prefix" || !bytes.Equal(buf[6:], want) {
			t.Fatalf("record %d: AppendRecordPoints:\n got %x\nwant prefix + %x", i, buf, want)
		}
		if i%10 == 0 {
			back, err := DecodeRecord(got)
			if err != nil {
				t.Fatalf("record %d does not decode: %v", i, err)
			}
			if !back.Equal(&r) {
				t.Fatalf("record %d: round trip changed it:\n%+v\n%+v", i, back, r)
			}
		}
		sawMany = sawMany || len(r.Vals) > smallVals
		sawHuge = sawHuge || len(got) > 4*scratchSize
		sawEmpty = sawEmpty || len(r.Vals) == 0
		for k := range r.Vals {
			sawLongKey = sawLongKey || len(k) >= 256
		}
	}
	if !sawMany || !sawHuge || !sawEmpty || !sawLongKey {
		t.Fatalf("generator missed a corner: many points %v, huge %v, empty vals %v, 256-byte key %v", sawMany, sawHuge, sawEmpty, sawLongKey)
	}
}

// pointsOf lists vals as points, in map order.
func pointsOf(vals map[string]Value) []Point {
	var pts []Point
	for k, v := range vals {
		pts = append(pts, Point{k, v})
	}
	return pts
}

// TestAppendRecordPointsRejects: a name given twice is refused (the map
// AppendRecord takes cannot hold it); so are the gap and rejected records
// AppendRecord refuses, and their valid forms encode as AppendRecord does.
func TestAppendRecordPointsRejects(t *testing.T) {
	r := Record{Dev: "meter-01", Kind: KindPower, TS: 1, TSrc: TSrcGateway}
	for _, pts := range [][]Point{
		{{"a", Int(1)}, {"b", Int(2)}, {"a", Int(1)}},
		{{"voltage", Dec(1, 0)}, {"voltage", Int(2)}},
	} {
		out, err := AppendRecordPoints([]byte{1}, &r, pts)
		if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "duplicate key "+pts[len(pts)-1].Name) {
			t.Fatalf("%v: got %v, want a duplicate key error", pts, err)
		}
		if !bytes.Equal(out, []byte{1}) {
			t.Fatalf("%v: dst changed to %x on error", pts, out)
		}
	}
	gap := GapRecord("gw-1", 5, 9, "quota", 1)
	want := mustEncodeRecord(t, &gap)
	pts := pointsOf(gap.Vals)
	gap.Vals = nil
	got, err := AppendRecordPoints(nil, &gap, pts)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("gap record: %x, %v; want %x", got, err, want)
	}
	if _, err := AppendRecordPoints(nil, &gap, append(pts, pts[0])); !errors.Is(err, ErrSchema) {
		t.Fatalf("gap record with a point twice: %v, want ErrSchema", err)
	}
	if _, err := AppendRecordPoints(nil, &gap, pts[:2]); !errors.Is(err, ErrSchema) {
		t.Fatalf("gap record with two points: %v, want ErrSchema", err)
	}
}

// TestEncodeRecordGolden pins one record by hand: keys in deterministic
// order (q, ts, dev, seq, grid, hash, kind, prev, tsrc, vals; points by
// length, then bytes) and the nil vals map written as {}.
func TestEncodeRecordGolden(t *testing.T) {
	r := Record{Seq: 24, Dev: "d", Kind: KindGPIO, TS: -25, TSrc: TSrcDevice, Grid: "g", Q: 256,
		Vals: map[string]Value{"bb": Int(1), "a": Float(1.5), "ab": Dec(-1, 2), "\u00e9": Bool(true), "b": Text("x")}}
	want := "a8" + // map of 8
		"6171" + "190100" + // q: 256
		"627473" + "3818" + // ts: -25
		"63646576" + "6164" + // dev: "d"
		"63736571" + "1818" + // seq: 24
		"6467726964" + "6167" + // grid: "g"
		"646b696e64" + "646770696f" + // kind: "gpio"
		"6474737263" + "66646576696365" + // tsrc: "device"
		"6476616c73" + "a5" + // vals: map of 5
		"6161" + "f93e00" + // "a": 1.5
		"6162" + "6178" + // "b": "x"
		"626162" + "c4820220" + // "ab": 4([2, -1])
		"626262" + "01" + // "bb": 1
		"62c3a9" + "f5" // "é": true
	got := mustEncodeRecord(t, &r)
	if fmt.Sprintf("%x", got) != want {
		t.Fatalf("got  %x\nwant %s", got, want)
	}
	r.Vals = nil
	if got := mustEncodeRecord(t, &r); !bytes.HasSuffix(got, []byte{0x64, 'v', 'a', 'l', 's', 0xa0}) {
		t.Fatalf("nil vals: %x", got)
	}
}

// TestEncodeMatchesLibrary: Encode writes the library's bytes for random
// batches on every stream, and AppendBatch's over EncodeRecord outputs.
func TestEncodeMatchesLibrary(t *testing.T) {
	g := newGen(9)
	for i := range 300 {
		stream := []string{StreamTelemetry, StreamEvents, StreamAlarms, StreamEvidence}[i%4]
		n := 1 + g.r.IntN(30)
		if i%50 == 0 {
			n = 300
		}
		b := g.batch("tl-320583104-01", stream, 1+g.r.Uint64N(1<<40), n)
		if stream != StreamEvidence && i%3 == 0 {
			for j := range b.Recs {
				seq := b.Recs[j].Seq
				b.Recs[j] = g.edgeRecord(j)
				b.Recs[j].Seq, b.Recs[j].Prev, b.Recs[j].Hash, b.Recs[j].Sig, b.Recs[j].Alg = seq, nil, nil, nil, ""
				if b.Recs[j].Kind == KindGap {
					b.Recs[j].Dev = b.GW
					if stream == StreamAlarms {
						b.Recs[j].Vals["reason"] = Text(GapReasonRestored)
					}
				}
			}
		}
		got, err := Encode(b)
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		want, err := refEncodeBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("batch %d differs from the library encoding:\n got %x\nwant %x", i, got, want)
		}
		recs := make([][]byte, len(b.Recs))
		for j := range b.Recs {
			recs[j] = mustEncodeRecord(t, &b.Recs[j])
		}
		if framed := AppendBatch(nil, b.GW, b.Stream, recs); !bytes.Equal(framed, got) {
			t.Fatalf("batch %d: AppendBatch differs from Encode", i)
		}
	}
}

// sameError fails unless got and want are the same error: same text, same
// sentinel, same *Error fields.
func sameError(t *testing.T, name string, got, want error) {
	t.Helper()
	if want == nil {
		t.Fatalf("%s: the reference accepts the record (test bug)", name)
	}
	if got == nil {
		t.Fatalf("%s: no error, want %v", name, want)
	}
	if got.Error() != want.Error() {
		t.Fatalf("%s:\n got %v\nwant %v", name, got, want)
	}
	var ge, we *Error
	if !errors.As(got, &ge) || !errors.As(want, &we) || *ge != *we {
		t.Fatalf("%s: got %#v, want %#v", name, got, want)
	}
}

// TestEncodeRecordRejects: EncodeRecord and AppendRecord reject what the
// old encoder rejected, with the same error, and leave dst as it was.
// Records with several faults get the error of the first in checking
// order (dev, kind, tsrc, grid, vals, prev, hash, gap).
func TestEncodeRecordRejects(t *testing.T) {
	ok := func() Record {
		return Record{Seq: 1, Dev: "meter-1", Kind: KindPower, TS: 1, TSrc: TSrcDevice, Vals: map[string]Value{"energy_kwh": Dec(1, -2)}}
	}
	many := func(bad string, v Value) map[string]Value {
		m := map[string]Value{bad: v}
		for i := range 40 {
			m[fmt.Sprintf("p%02d", i)] = Int(int64(i))
		}
		return m
	}
	tooMany := make(map[string]Value, maxMapPairs+1)
	for i := range maxMapPairs + 1 {
		tooMany[fmt.Sprint(i)] = Int(1)
	}
	gap := func() Record { return GapRecord("gw", 5, 9, "quota", 1) }
	h32, h31, h33 := make([]byte, 32), make([]byte, 31), make([]byte, 33)
	cases := []struct {
		name string
		edit func(r *Record)
	}{
		{"empty dev", func(r *Record) { r.Dev = "" }},
		{"dev not UTF-8", func(r *Record) { r.Dev = "m\xff" }},
		{"unknown kind", func(r *Record) { r.Kind = "bogus" }},
		{"empty kind", func(r *Record) { r.Kind = "" }},
		{"unknown tsrc", func(r *Record) { r.TSrc = "ntp" }},
		{"grid not UTF-8", func(r *Record) { r.Grid = "\xfe" }},
		{"empty key", func(r *Record) { r.Vals[""] = Int(1) }},
		{"key not UTF-8", func(r *Record) { r.Vals["a\xc3"] = Int(1) }},
		{"NaN", func(r *Record) { r.Vals["energy_kwh"] = Float(math.NaN()) }},
		{"+Inf", func(r *Record) { r.Vals["energy_kwh"] = Float(math.Inf(1)) }},
		{"-Inf", func(r *Record) { r.Vals["energy_kwh"] = Float(math.Inf(-1)) }},
		{"text not UTF-8", func(r *Record) { r.Vals["energy_kwh"] = Text("\xff") }},
		{"zero Value", func(r *Record) { r.Vals["energy_kwh"] = Value{} }},
		{"unknown Kind", func(r *Record) { r.Vals["energy_kwh"] = Value{kind: 42} }},
		{"bad point among many", func(r *Record) { r.Vals = many("zz", Float(math.Inf(1))) }},
		{"bad key among many", func(r *Record) { r.Vals = many("\xff\xfe", Int(1)) }},
		{"too many points", func(r *Record) { r.Vals = tooMany }},
		{"prev 31 bytes", func(r *Record) { r.Prev = h31 }},
		{"prev 33 bytes", func(r *Record) { r.Prev, r.Hash = h33, h32 }},
		{"hash 1 byte", func(r *Record) { r.Hash = []byte{1} }},
		{"hash 31 bytes", func(r *Record) { r.Prev, r.Hash = h32, h31 }},
		{"gap with 2 points", func(r *Record) { *r = gap(); delete(r.Vals, "reason") }},
		{"gap with 4 points", func(r *Record) { *r = gap(); r.Vals["x"] = Int(1) }},
		{"gap from 0", func(r *Record) { *r = gap(); r.Vals["from"] = Int(0) }},
		{"gap to < from", func(r *Record) { *r = gap(); r.Vals["to"] = Int(4) }},
		{"gap from decimal", func(r *Record) { *r = gap(); r.Vals["from"] = Dec(5, 0) }},
		{"gap reason int", func(r *Record) { *r = gap(); r.Vals["reason"] = Int(1) }},
		// Several faults: the first in checking order wins.
		{"dev and point", func(r *Record) { r.Dev = ""; r.Vals["x"] = Float(math.NaN()) }},
		{"kind and tsrc", func(r *Record) { r.Kind, r.TSrc = "k", "t" }},
		{"grid and prev", func(r *Record) { r.Grid, r.Prev = "\xff", h31 }},
		{"too many and tsrc", func(r *Record) { r.Vals, r.TSrc = tooMany, "x" }},
		{"too many and prev", func(r *Record) { r.Vals, r.Prev = tooMany, h31 }},
		{"point and prev", func(r *Record) { r.Vals["x"] = Value{}; r.Prev = h31 }},
		{"prev and hash", func(r *Record) { r.Prev, r.Hash = h31, h33 }},
		{"hash and gap", func(r *Record) { *r = gap(); r.Hash = h31; r.Vals["from"] = Int(0) }},
		{"gap point NaN", func(r *Record) { *r = gap(); r.Vals["from"] = Float(math.NaN()) }},
	}
	for _, c := range cases {
		r := ok()
		c.edit(&r)
		want := func() error { _, err := refEncodeRecord(&r); return err }()
		got, err := EncodeRecord(&r)
		sameError(t, c.name+": EncodeRecord", err, want)
		if got != nil {
			t.Fatalf("%s: EncodeRecord returned %x with the error", c.name, got)
		}
		dst := []byte("keep")
		out, err := AppendRecord(dst, &r)
		sameError(t, c.name+": AppendRecord", err, want)
		if string(out) != "keep" {
			t.Fatalf("%s: AppendRecord changed dst to %q", c.name, out)
		}
		unhashed := r
		unhashed.Hash = nil
		_, wantCH := refEncodeRecord(&unhashed)
		if _, err := ChainHash(&r); fmt.Sprint(err) != fmt.Sprint(wantCH) {
			t.Fatalf("%s: ChainHash: %v, want %v", c.name, err, wantCH)
		}
	}
	// The same faults inside a batch: Encode's errors name the record.
	for _, c := range cases[:8] {
		r := ok()
		c.edit(&r)
		b := &Batch{V: Version, GW: "gw", Stream: StreamTelemetry, Recs: []Record{ok(), r}}
		b.Recs[1].Seq = 2
		_, want := refEncodeBatch(b)
		_, err := Encode(b)
		sameError(t, c.name+": Encode", err, want)
		if !strings.HasPrefix(err.(*Error).Path, "recs[1]") {
			t.Fatalf("%s: path %q does not name recs[1]", c.name, err.(*Error).Path)
		}
	}
}

// TestAppendRecordAllocs: into a buffer with room AppendRecord allocates
// nothing; EncodeRecord allocates only its result.
func TestAppendRecordAllocs(t *testing.T) {
	r := benchRecord()
	want := mustEncodeRecord(t, r)
	buf := make([]byte, 0, 1024)
	got := testing.AllocsPerRun(200, func() {
		var err error
		if buf, err = AppendRecord(buf[:0], r); err != nil {
			t.Fatal(err)
		}
	})
	if !bytes.Equal(buf, want) {
		t.Fatalf("AppendRecord %x, want %x", buf, want)
	}
	if raceEnabled {
		return // the race detector's instrumentation allocates
	}
	if got != 0 {
		t.Fatalf("AppendRecord into a large enough buffer: %v allocations per call, want 0", got)
	}
	if got := testing.AllocsPerRun(200, func() { _, _ = EncodeRecord(r) }); got != 1 {
		t.Fatalf("EncodeRecord: %v allocations per call, want 1", got)
	}
	pts := pointsOf(r.Vals)
	head := *r
	head.Vals = nil
	got = testing.AllocsPerRun(200, func() {
		var err error
		if buf, err = AppendRecordPoints(buf[:0], &head, pts); err != nil {
			t.Fatal(err)
		}
	})
	if !bytes.Equal(buf, want) {
		t.Fatalf("AppendRecordPoints %x, want %x", buf, want)
	}
	if got != 0 {
		t.Fatalf("AppendRecordPoints into a large enough buffer: %v allocations per call, want 0", got)
	}
}

// FuzzEncodeRecord builds a record from arbitrary bytes (valid or not:
// bad UTF-8, NaN, unknown kinds, odd prev/hash lengths, equal-length and
// long keys) and checks that EncodeRecord and AppendRecord agree with the
// library-based reference: the same bytes, or the same error.
func FuzzEncodeRecord(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x00\x01\x02meter\x00energy\x00\x01\x02\x03\x04\x05\x06\x07\x08"))
	f.Add([]byte("\x07\x09\x02d\x00\x10aa\x00bb\x00cc\x00\xe9\x00\xff\x00\x80\x80\x80\x80\x80\x80\x80\x80"))
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x20\x20\x20"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, invalidPoints := fuzzRecord(data)
		want, wantErr := refEncodeRecord(&r)
		got, err := EncodeRecord(&r)
		out, appendErr := AppendRecord([]byte{0xaa}, &r)
		head := r
		head.Vals = nil
		pout, perr := AppendRecordPoints([]byte{0xaa}, &head, pointsOf(r.Vals))
		if (perr == nil) != (appendErr == nil) || (perr == nil && !bytes.Equal(pout, out)) ||
			(perr != nil && invalidPoints <= 1 && perr.Error() != appendErr.Error()) {
			t.Fatalf("AppendRecordPoints: %x, %v\nAppendRecord: %x, %v", pout, perr, out, appendErr)
		}
		switch {
		case wantErr == nil:
			if err != nil || appendErr != nil {
				t.Fatalf("reference accepts, EncodeRecord: %v, AppendRecord: %v", err, appendErr)
			}
			if !bytes.Equal(got, want) || !bytes.Equal(out[1:], want) || out[0] != 0xaa {
				t.Fatalf("got %x\nappend %x\nwant %x", got, out, want)
			}
		case err == nil || appendErr == nil:
			t.Fatalf("reference rejects (%v), EncodeRecord: %v, AppendRecord: %v", wantErr, err, appendErr)
		case invalidPoints <= 1: // otherwise map order picks which point is named
			if err.Error() != wantErr.Error() || appendErr.Error() != wantErr.Error() {
				t.Fatalf("errors differ:\n got %v\n     %v\nwant %v", err, appendErr, wantErr)
			}
		default:
			for _, s := range []error{ErrSchema, ErrTooLarge} {
				if errors.Is(err, s) != errors.Is(wantErr, s) {
					t.Fatalf("errors differ: %v, want %v", err, wantErr)
				}
			}
		}
	})
}

// fuzzRecord reads a record from data; it also counts the points that are
// invalid on their own.
func fuzzRecord(data []byte) (r Record, invalidPoints int) {
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	str := func() string { // up to the next 0 byte
		i := bytes.IndexByte(data, 0)
		if i < 0 {
			i = len(data)
		}
		s := string(data[:i])
		data = data[min(i+1, len(data)):]
		return s
	}
	u64 := func() uint64 {
		var u uint64
		for range next() % 9 {
			u = u<<8 | uint64(next())
		}
		return u
	}
	kinds := append(append([]string{}, genKinds...), KindGap, "bogus")
	r.Kind = kinds[int(next())%len(kinds)]
	r.TSrc = append(append([]string{}, genTSrcs...), "ntp")[int(next())%4]
	flags := next()
	r.Dev = str()
	r.Seq, r.TS, r.Q = u64(), int64(u64()), u64()
	if flags&1 != 0 {
		r.Grid = str()
	}
	if flags&2 != 0 {
		r.Prev = make([]byte, int(next())%40)
	}
	if flags&4 != 0 {
		r.Hash = make([]byte, int(next())%40)
	}
	if flags&8 != 0 {
		return r, 0 // nil vals
	}
	n := int(next()) % 64
	r.Vals = make(map[string]Value, n)
	for range n {
		k := str()
		if flags&16 != 0 {
			k = strings.Repeat(k, 1+int(next())%40)
		}
		var v Value
		switch next() % 7 {
		case 0:
			v = Dec(int64(u64()), int32(u64()))
		case 1:
			v = Int(int64(u64()))
		case 2:
			v = Float(math.Float64frombits(u64()))
		case 3:
			v = Float(float64(math.Float32frombits(uint32(u64()))))
		case 4:
			v = Bool(next()&1 != 0)
		case 5:
			v = Text(str())
		}
		r.Vals[k] = v
	}
	for k, v := range r.Vals {
		if textProblem(k) != "" || v.check() != nil {
			invalidPoints++
		}
	}
	return r, invalidPoints
}

// BenchmarkEncodeRecordLibrary is the reference (the encoder before
// AppendRecord), for comparison with BenchmarkEncodeRecord.
func BenchmarkEncodeRecordLibrary(b *testing.B) {
	r := benchRecord()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := refEncodeRecord(r); err != nil {
			b.Fatal(err)
		}
	}
}

func benchBatch() *Batch {
	bt := &Batch{V: Version, GW: "tl-320583104-01", Stream: StreamTelemetry}
	for i := range 100 {
		r := *benchRecord()
		r.Seq = uint64(1000 + i)
		bt.Recs = append(bt.Recs, r)
	}
	return bt
}

// BenchmarkEncode encodes a 100-record batch; BenchmarkEncodeLibrary is
// the reference.
func BenchmarkEncode(b *testing.B) {
	bt := benchBatch()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(bt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeLibrary(b *testing.B) {
	bt := benchBatch()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := refEncodeBatch(bt); err != nil {
			b.Fatal(err)
		}
	}
}
