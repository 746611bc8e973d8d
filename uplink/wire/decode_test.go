package wire

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// Test inputs are built as generic Go values and encoded by the library,
// independently of the package's own encoder.

type obj = map[string]any

func baseRecord(seq uint64) obj {
	return obj{"seq": seq, "dev": "meter-1", "kind": "power", "ts": int64(1767225600000), "tsrc": "device",
		"vals": obj{"energy_kwh": cbor.Tag{Number: 4, Content: []any{-2, 12345678}}}}
}

func baseBatch() obj {
	return obj{"v": 1, "gw": "gw-1", "stream": "telemetry", "recs": []any{baseRecord(1), baseRecord(2)}}
}

func enc(t testing.TB, v any) []byte {
	t.Helper()
	p, err := modes.enc.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rawMap encodes a map from pairs in the given order, duplicates allowed.
func rawMap(t testing.TB, kv ...any) []byte {
	t.Helper()
	p := appendHead(nil, majMap, uint64(len(kv)/2))
	for _, x := range kv {
		if r, ok := x.(cbor.RawMessage); ok {
			p = append(p, r...)
			continue
		}
		p = append(p, enc(t, x)...)
	}
	return p
}

func with(m obj, k string, v any) obj {
	c := obj{}
	for kk, vv := range m {
		c[kk] = vv
	}
	if v == nil {
		delete(c, k)
	} else {
		c[k] = v
	}
	return c
}

type nullT struct{}

func (nullT) MarshalCBOR() ([]byte, error) { return []byte{0xf6}, nil }

func batchWithRec(rec obj) obj { return with(baseBatch(), "recs", []any{rec}) }

func batchWithVal(v any) obj {
	return batchWithRec(with(baseRecord(1), "vals", obj{"p": v}))
}

func hx(s string) cbor.RawMessage {
	s = strings.ReplaceAll(s, " ", "")
	b := make([]byte, len(s)/2)
	for i := range b {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			default:
				v |= byte(c-'a') + 10
			}
		}
		b[i] = v
	}
	return b
}

func TestDecodeRejects(t *testing.T) {
	valid := enc(t, baseBatch())
	if _, err := Decode(valid); err != nil {
		t.Fatalf("base batch: %v", err)
	}
	evRec := func() obj {
		r := baseRecord(1)
		r["prev"], r["hash"] = make([]byte, 32), make([]byte, 32)
		return r
	}
	recMissing := func(k string) []byte { return enc(t, batchWithRec(with(baseRecord(1), k, nil))) }
	many := append(appendHead(nil, majArray, MaxRecords+1), make([]byte, MaxRecords+1)...)
	nested := bytes.Repeat([]byte{0x81}, 40)
	nested = append(nested, 0x00)

	cases := []struct {
		name  string
		in    []byte
		want  error
		needs string // substring of the message
	}{
		{"empty", nil, ErrMalformed, "empty"},
		{"not CBOR", []byte{0xff}, ErrMalformed, ""},
		{"truncated", valid[:len(valid)-3], ErrMalformed, ""},
		{"trailing bytes", append(append([]byte{}, valid...), 0x00), ErrMalformed, "trailing"},
		{"two batches", append(append([]byte{}, valid...), valid...), ErrMalformed, "trailing"},
		{"indefinite map", append(append([]byte{0xbf}, valid[1:]...), 0xff), ErrMalformed, "indefinite"},
		{"indefinite text", rawMap(t, "v", 1, "gw", hx("7f 62 67 77 ff"), "stream", "telemetry", "recs", []any{baseRecord(1)}), ErrMalformed, "indefinite"},
		{"too big", make([]byte, MaxInputBytes+1), ErrTooLarge, "bytes"},
		{"too many records", rawMap(t, "v", 1, "gw", "gw-1", "stream", "telemetry", "recs", cbor.RawMessage(many)), ErrTooLarge, ""},
		{"nested too deep", enc(t, batchWithVal(cbor.RawMessage(nested))), ErrTooLarge, ""},
		{"array", enc(t, []any{1, 2}), ErrSchema, "want map, got array"},
		{"null", []byte{0xf6}, ErrSchema, "want map, got null"},
		{"v 2", enc(t, with(baseBatch(), "v", 2)), ErrVersion, "got 2"},
		{"v 2 with new keys", enc(t, with(with(baseBatch(), "v", 2), "new", 1)), ErrVersion, "got 2"},
		{"v text", enc(t, with(baseBatch(), "v", "1")), ErrSchema, "v: want unsigned integer, got text string"},
		{"v missing", enc(t, with(baseBatch(), "v", nil)), ErrSchema, "v: missing"},
		{"gw missing", enc(t, with(baseBatch(), "gw", nil)), ErrSchema, "gw: missing"},
		{"recs missing", enc(t, with(baseBatch(), "recs", nil)), ErrSchema, "recs: missing"},
		{"stream missing", enc(t, with(baseBatch(), "stream", nil)), ErrSchema, "stream: missing"},
		{"unknown key", enc(t, with(baseBatch(), "extra", 1)), ErrSchema, `"extra": unknown key`},
		{"duplicate key", rawMap(t, "v", 1, "gw", "gw-1", "gw", "gw-2", "stream", "telemetry", "recs", []any{baseRecord(1)}), ErrSchema, "duplicate key gw"},
		{"non-text key", rawMap(t, "v", 1, "gw", "gw-1", "stream", "telemetry", "recs", []any{baseRecord(1)}, 7, 1), ErrSchema, "keys must be text"},
		{"bad gw", enc(t, with(baseBatch(), "gw", "GW_1")), ErrSchema, "gw: gateway id"},
		{"gw bytes", enc(t, with(baseBatch(), "gw", []byte("gw-1"))), ErrSchema, "gw: want text string, got byte string"},
		{"status stream", enc(t, with(baseBatch(), "stream", "status")), ErrSchema, "stream"},
		{"recs empty", enc(t, with(baseBatch(), "recs", []any{})), ErrSchema, "recs: empty"},
		{"recs map", enc(t, with(baseBatch(), "recs", obj{})), ErrSchema, "recs: want array, got map"},
		{"record not a map", enc(t, with(baseBatch(), "recs", []any{1})), ErrSchema, "recs[0]: record: want map"},
		{"seq 0", enc(t, batchWithRec(baseRecord(0))), ErrSchema, "recs[0].seq: 0"},
		{"seq repeated", enc(t, with(baseBatch(), "recs", []any{baseRecord(5), baseRecord(5)})), ErrSchema, "recs[1].seq: 5 after 5"},
		{"seq descending", enc(t, with(baseBatch(), "recs", []any{baseRecord(5), baseRecord(4)})), ErrSchema, "recs[1].seq: 4 after 5"},
		{"seq negative", enc(t, batchWithRec(with(baseRecord(1), "seq", -1))), ErrSchema, "recs[0].seq: want unsigned integer, got negative integer"},
		{"seq bignum", enc(t, batchWithRec(with(baseRecord(1), "seq", cbor.Tag{Number: 2, Content: []byte{1, 0, 0, 0, 0, 0, 0, 0, 0}}))), ErrSchema, "tag 2 (bignum)"},
		{"seq missing in 2nd", enc(t, with(baseBatch(), "recs", []any{baseRecord(1), with(baseRecord(2), "seq", nil)})), ErrSchema, "recs[1].seq: missing"},
		{"dev missing", recMissing("dev"), ErrSchema, "recs[0].dev: missing"},
		{"kind missing", recMissing("kind"), ErrSchema, "recs[0].kind: missing"},
		{"ts missing", recMissing("ts"), ErrSchema, "recs[0].ts: missing"},
		{"tsrc missing", recMissing("tsrc"), ErrSchema, "recs[0].tsrc: missing"},
		{"vals missing", recMissing("vals"), ErrSchema, "recs[0].vals: missing"},
		{"dev empty", enc(t, batchWithRec(with(baseRecord(1), "dev", ""))), ErrSchema, "recs[0].dev: must not be empty"},
		{"dev invalid utf8", enc(t, batchWithRec(with(baseRecord(1), "dev", hx("62 c3 28")))), ErrSchema, "recs[0].dev"},
		{"record unknown key", enc(t, batchWithRec(with(baseRecord(1), "unit", "kWh"))), ErrSchema, `recs[0]."unit": unknown key`},
		{"record duplicate key", enc(t, with(baseBatch(), "recs", []any{cbor.RawMessage(rawMap(t, "seq", 1, "dev", "a", "kind", "power", "ts", 1, "tsrc", "device", "vals", obj{}, "dev", "b"))})), ErrSchema, "recs[0]: record: duplicate key dev"},
		{"unknown tsrc", enc(t, batchWithRec(with(baseRecord(1), "tsrc", "gps"))), ErrSchema, `recs[0].tsrc: unknown tsrc "gps"`},
		{"unknown kind", enc(t, batchWithRec(with(baseRecord(1), "kind", "bike"))), ErrSchema, `recs[0].kind: unknown kind "bike"`},
		{"ts float", enc(t, batchWithRec(with(baseRecord(1), "ts", 1.5))), ErrSchema, "recs[0].ts: want integer, got float"},
		{"ts too big", enc(t, batchWithRec(with(baseRecord(1), "ts", uint64(math.MaxUint64)))), ErrSchema, "recs[0].ts: integer 18446744073709551615 out of int64 range"},
		{"q negative", enc(t, batchWithRec(with(baseRecord(1), "q", -1))), ErrSchema, "recs[0].q: want unsigned"},
		{"grid int", enc(t, batchWithRec(with(baseRecord(1), "grid", 3))), ErrSchema, "recs[0].grid: want text"},
		{"vals null", enc(t, batchWithRec(with(baseRecord(1), "vals", nullT{}))), ErrSchema, "recs[0].vals: want map, got null"},
		{"vals int key", enc(t, batchWithRec(with(baseRecord(1), "vals", map[int]any{1: 2}))), ErrSchema, "recs[0].vals: map keys must be text"},
		{"vals duplicate", enc(t, batchWithRec(with(baseRecord(1), "vals", cbor.RawMessage(rawMap(t, "a", 1, "a", 2))))), ErrSchema, "recs[0].vals: duplicate key a"},
		{"vals empty key", enc(t, batchWithRec(with(baseRecord(1), "vals", obj{"": 1}))), ErrSchema, `vals[""]: must not be empty`},
		{"value null", enc(t, batchWithVal(nullT{})), ErrSchema, `recs[0].vals["p"]: null not allowed`},
		{"value undefined", enc(t, batchWithVal(cbor.RawMessage{0xf7})), ErrSchema, `vals["p"]: undefined not allowed`},
		{"value simple", enc(t, batchWithVal(cbor.RawMessage{0xf0})), ErrSchema, `vals["p"]: simple value 16 not allowed`},
		{"value array", enc(t, batchWithVal([]any{1})), ErrSchema, `vals["p"]: array not allowed`},
		{"value map", enc(t, batchWithVal(obj{"a": 1})), ErrSchema, `vals["p"]: map not allowed`},
		{"value bytes", enc(t, batchWithVal([]byte{1})), ErrSchema, `vals["p"]: byte string not allowed`},
		{"value time tag", enc(t, batchWithVal(cbor.Tag{Number: 1, Content: 1})), ErrSchema, `vals["p"]: tag 1 not allowed`},
		{"value bignum", enc(t, batchWithVal(cbor.Tag{Number: 2, Content: []byte{1, 0, 0, 0, 0, 0, 0, 0, 0}})), ErrSchema, `vals["p"]: tag 2 (bignum) not allowed`},
		{"value bigfloat", enc(t, batchWithVal(cbor.Tag{Number: 5, Content: []any{1, 2}})), ErrSchema, `vals["p"]: tag 5 not allowed`},
		{"value int too big", enc(t, batchWithVal(uint64(math.MaxInt64)+1)), ErrSchema, `vals["p"]: integer 9223372036854775808 out of int64 range`},
		{"value int too small", enc(t, batchWithVal(cbor.RawMessage(hx("3b 8000000000000000")))), ErrSchema, `out of int64 range`},
		{"value NaN", enc(t, batchWithVal(cbor.RawMessage(hx("f9 7e00")))), ErrSchema, `vals["p"]: float is NaN or infinite`},
		{"value Inf64", enc(t, batchWithVal(cbor.RawMessage(hx("fb 7ff0000000000000")))), ErrSchema, `NaN or infinite`},
		{"value bad utf8", enc(t, batchWithVal(cbor.RawMessage(hx("62 c3 28")))), ErrSchema, `vals["p"]`},
		{"decimal bignum mantissa", enc(t, batchWithVal(cbor.Tag{Number: 4, Content: []any{-2, cbor.Tag{Number: 2, Content: []byte{1, 0, 0, 0, 0, 0, 0, 0, 0}}}})), ErrSchema, "bignum (tag 2/3) not supported"},
		{"decimal negative bignum mantissa", enc(t, batchWithVal(cbor.Tag{Number: 4, Content: []any{-2, cbor.Tag{Number: 3, Content: []byte{1, 0, 0, 0, 0, 0, 0, 0, 0}}}})), ErrSchema, "bignum (tag 2/3) not supported"},
		{"decimal float mantissa", enc(t, batchWithVal(cbor.Tag{Number: 4, Content: []any{-2, 1.5}})), ErrSchema, "mantissa: want integer, got float"},
		{"decimal text exponent", enc(t, batchWithVal(cbor.Tag{Number: 4, Content: []any{"x", 1}})), ErrSchema, "exponent: want integer, got text"},
		{"decimal exponent range", enc(t, batchWithVal(cbor.Tag{Number: 4, Content: []any{int64(math.MaxInt32) + 1, 1}})), ErrSchema, "exponent 2147483648 out of int32 range"},
		{"decimal 3 items", enc(t, batchWithVal(cbor.Tag{Number: 4, Content: []any{1, 2, 3}})), ErrSchema, "want [exponent, mantissa], got array"},
		{"decimal not array", enc(t, batchWithVal(cbor.Tag{Number: 4, Content: 12})), ErrSchema, "want [exponent, mantissa]"},
		{"decimal mantissa too big", enc(t, batchWithVal(cbor.Tag{Number: 4, Content: []any{0, uint64(math.MaxUint64)}})), ErrSchema, "mantissa: integer 18446744073709551615 out of int64 range"},
		{"prev on telemetry", enc(t, batchWithRec(with(baseRecord(1), "prev", make([]byte, 32)))), ErrSchema, "recs[0].prev: only allowed on the evidence stream"},
		{"hash on telemetry", enc(t, batchWithRec(with(baseRecord(1), "hash", make([]byte, 32)))), ErrSchema, "recs[0].hash: only allowed on the evidence stream"},
		{"prev 31 bytes", enc(t, with(batchWithRec(with(evRec(), "prev", make([]byte, 31))), "stream", "evidence")), ErrSchema, "recs[0].prev: 31 bytes, want 32"},
		{"hash 33 bytes", enc(t, with(batchWithRec(with(evRec(), "hash", make([]byte, 33))), "stream", "evidence")), ErrSchema, "recs[0].hash: 33 bytes, want 32"},
		{"hash text", enc(t, with(batchWithRec(with(evRec(), "hash", strings.Repeat("a", 32))), "stream", "evidence")), ErrSchema, "recs[0].hash: want byte string"},
		{"evidence without hash", enc(t, with(batchWithRec(with(evRec(), "hash", nil)), "stream", "evidence")), ErrSchema, "recs[0].hash: missing"},
		{"evidence without prev", enc(t, with(batchWithRec(with(evRec(), "prev", nil)), "stream", "evidence")), ErrSchema, "recs[0].prev: missing"},
		{"gap from other gw", enc(t, batchWithRec(obj{"seq": 9, "dev": "gw-2", "kind": "gap", "ts": 1, "tsrc": "gateway", "vals": obj{"from": 1, "to": 8, "reason": "quota"}})), ErrSchema, `recs[0].dev: gap record from "gw-2"`},
		{"gap without reason", enc(t, batchWithRec(obj{"seq": 9, "dev": "gw-1", "kind": "gap", "ts": 1, "tsrc": "gateway", "vals": obj{"from": 1, "to": 8, "x": 1}})), ErrSchema, `recs[0].vals["reason"]: gap: want text`},
		{"gap to < from", enc(t, batchWithRec(obj{"seq": 9, "dev": "gw-1", "kind": "gap", "ts": 1, "tsrc": "gateway", "vals": obj{"from": 5, "to": 4, "reason": "quota"}})), ErrSchema, `recs[0].vals["to"]: gap: want int ≥ from`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := Decode(c.in)
			if err == nil {
				t.Fatalf("Decode accepted it: %+v", b)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("error %q does not wrap %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.needs) {
				t.Fatalf("error %q does not mention %q", err, c.needs)
			}
			if !strings.HasPrefix(err.Error(), "wire: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

// TestDecodeAccepts: inputs that are valid though not in the encoder's form
// (non-shortest heads, unsorted keys, float64 that fits float16, explicit
// q 0) decode, and re-encode deterministically.
func TestDecodeAccepts(t *testing.T) {
	rec := rawMap(t, "vals", cbor.RawMessage(rawMap(t, "f", cbor.RawMessage(hx("fb 3ff8000000000000")), "n", cbor.RawMessage(hx("18 05")))),
		"seq", cbor.RawMessage(hx("1b 0000000000000007")), "dev", "m", "kind", "water", "ts", -5, "tsrc", "unsynced", "q", 0)
	in := rawMap(t, "stream", "telemetry", "recs", []any{cbor.RawMessage(rec)}, "v", 1, "gw", "gw-1")
	b, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	r := b.Recs[0]
	if r.Seq != 7 || r.TS != -5 || r.Q != 0 || !r.Vals["f"].Equal(Float(1.5)) || !r.Vals["n"].Equal(Int(5)) {
		t.Fatalf("decoded %+v", r)
	}
	out, err := Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	want := enc(t, obj{"v": 1, "gw": "gw-1", "stream": "telemetry", "recs": []any{obj{"seq": 7, "dev": "m", "kind": "water", "ts": -5, "tsrc": "unsynced", "vals": obj{"f": 1.5, "n": 5}}}})
	if !bytes.Equal(out, want) {
		t.Fatalf("re-encoded\n got %x\nwant %x", out, want)
	}
}
