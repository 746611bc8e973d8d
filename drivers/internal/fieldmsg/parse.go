package fieldmsg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// Kind is the type of a parsed message value.
type Kind uint8

// The kinds of Node.
const (
	KindNull Kind = iota
	KindBool
	KindNum // Text holds the number as decimal text, possibly with an exponent
	KindStr
	KindObj
	KindArr
)

// String names the kind as error texts use it ("a number", "an object").
func (k Kind) String() string {
	switch k {
	case KindNull:
		return "null"
	case KindBool:
		return "a bool"
	case KindNum:
		return "a number"
	case KindStr:
		return "a string"
	case KindObj:
		return "an object"
	case KindArr:
		return "an array"
	}
	return "?"
}

// Node is one value of a message, JSON or CBOR alike. Numbers keep their
// literal text so decimals stay exact.
type Node struct {
	Kind Kind
	Bool bool             // KindBool
	Text string           // KindStr: the text; KindNum: the number's literal
	Obj  map[string]*Node // KindObj
	Arr  []*Node          // KindArr
}

// MaxDepth bounds nesting in both encodings: the parsers recurse. It is
// the only bound on a message's shape. There is no size limit and no limit
// on the number of keys or elements: the field broker's max_payload is
// the one limit, and decoding costs time and memory in proportion to the
// payload's size (one Node per value, at least one byte each).
const MaxDepth = 16

// maxCBORItems is the largest count fxamacker/cbor accepts: its default
// (131072) would be a second, smaller limit.
const maxCBORItems = 1<<31 - 1

// SyntaxError is a message that is neither a well-formed JSON object nor a
// well-formed CBOR map. Reason says why, without a package prefix.
type SyntaxError struct{ Reason string }

func (e *SyntaxError) Error() string { return e.Reason }

// Parse decodes a JSON object or a CBOR map; isCBOR says which it was.
// The first byte (after JSON whitespace) tells them apart: '{' is JSON,
// 0xA0–0xBF is a CBOR map. Trailing bytes and duplicate keys are refused in
// both encodings. Every error is a *SyntaxError.
func Parse(b []byte) (top *Node, isCBOR bool, err error) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	if i == len(b) {
		return nil, false, &SyntaxError{"empty payload"}
	}
	switch c := b[i]; {
	case c == '{':
		n, err := parseJSON(b[i:])
		return n, false, err
	case c >= 0xA0 && c <= 0xBF && i == 0:
		n, err := parseCBOR(b)
		return n, true, err
	default:
		return nil, false, &SyntaxError{fmt.Sprintf("payload starts with byte 0x%02X: neither a JSON object nor a CBOR map", c)}
	}
}

func parseJSON(b []byte) (*Node, error) {
	if !utf8.Valid(b) {
		return nil, &SyntaxError{"JSON is not valid UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	n, err := jsonValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &SyntaxError{fmt.Sprintf("trailing data after the JSON object at byte %d", dec.InputOffset())}
	}
	return n, nil
}

func jsonValue(dec *json.Decoder, depth int) (*Node, error) {
	if depth > MaxDepth {
		return nil, &SyntaxError{fmt.Sprintf("JSON nested deeper than %d levels", MaxDepth)}
	}
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, &SyntaxError{"JSON ends early"}
		}
		return nil, &SyntaxError{fmt.Sprintf("JSON: %v", err)}
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := &Node{Kind: KindObj, Obj: map[string]*Node{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, &SyntaxError{fmt.Sprintf("JSON: %v", err)}
				}
				key, _ := kt.(string)
				if _, dup := n.Obj[key]; dup {
					return nil, &SyntaxError{"duplicate key " + lit(key)}
				}
				v, err := jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.Obj[key] = v
			}
			if _, err := dec.Token(); err != nil {
				return nil, &SyntaxError{fmt.Sprintf("JSON: %v", err)}
			}
			return n, nil
		case '[':
			n := &Node{Kind: KindArr}
			for dec.More() {
				v, err := jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.Arr = append(n.Arr, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, &SyntaxError{fmt.Sprintf("JSON: %v", err)}
			}
			return n, nil
		}
		return nil, &SyntaxError{fmt.Sprintf("JSON: unexpected %v", t)}
	case json.Number:
		return &Node{Kind: KindNum, Text: string(t)}, nil
	case string:
		return &Node{Kind: KindStr, Text: t}, nil
	case bool:
		return &Node{Kind: KindBool, Bool: t}, nil
	case nil:
		return &Node{Kind: KindNull}, nil
	}
	return nil, &SyntaxError{fmt.Sprintf("JSON: unexpected token %v", tok)}
}

var cborMode = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  MaxDepth + 2,
		MaxArrayElements: maxCBORItems,
		MaxMapPairs:      maxCBORItems,
		IndefLength:      cbor.IndefLengthAllowed,
		DefaultMapType:   reflect.TypeOf(map[string]any(nil)),
		BigIntDec:        cbor.BigIntDecodePointer,
	}.DecMode()
	if err != nil {
		panic(err) // static options: a programming error
	}
	return m
}()

func parseCBOR(b []byte) (*Node, error) {
	var v any
	if err := cborMode.Unmarshal(b, &v); err != nil {
		var dup *cbor.DupMapKeyError
		var extra *cbor.ExtraneousDataError
		switch {
		case errors.As(err, &dup):
			return nil, &SyntaxError{fmt.Sprintf("duplicate key %s in CBOR map", Clip(fmt.Sprint(dup.Key), 40))}
		case errors.As(err, &extra):
			return nil, &SyntaxError{"trailing data after the CBOR map"}
		}
		return nil, &SyntaxError{fmt.Sprintf("CBOR: %v", err)}
	}
	return fromCBOR(v, 0)
}

func fromCBOR(v any, depth int) (*Node, error) {
	if depth > MaxDepth {
		return nil, &SyntaxError{fmt.Sprintf("CBOR nested deeper than %d levels", MaxDepth)}
	}
	switch t := v.(type) {
	case nil:
		return &Node{Kind: KindNull}, nil
	case bool:
		return &Node{Kind: KindBool, Bool: t}, nil
	case string:
		return &Node{Kind: KindStr, Text: t}, nil
	case uint64:
		return &Node{Kind: KindNum, Text: strconv.FormatUint(t, 10)}, nil
	case int64:
		return &Node{Kind: KindNum, Text: strconv.FormatInt(t, 10)}, nil
	case *big.Int:
		return &Node{Kind: KindNum, Text: t.String()}, nil
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return nil, &SyntaxError{fmt.Sprintf("CBOR float %v is not a number", t)}
		}
		// The shortest text that round-trips is what the device meant.
		return &Node{Kind: KindNum, Text: strconv.FormatFloat(t, 'g', -1, 64)}, nil
	case time.Time:
		return &Node{Kind: KindNum, Text: strconv.FormatInt(t.UnixMilli(), 10)}, nil
	case cbor.Tag:
		if t.Number == 4 { // decimal fraction [exponent, mantissa]
			a, ok := t.Content.([]any)
			if ok && len(a) == 2 {
				e, eok := intText(a[0])
				m, mok := intText(a[1])
				if eok && mok {
					return &Node{Kind: KindNum, Text: m + "e" + e}, nil
				}
			}
			return nil, &SyntaxError{"CBOR tag 4 (decimal fraction) is not [exponent, mantissa]"}
		}
		return nil, &SyntaxError{fmt.Sprintf("unsupported CBOR tag %d", t.Number)}
	case []byte:
		return nil, &SyntaxError{"CBOR byte strings are not accepted (use text)"}
	case map[string]any:
		n := &Node{Kind: KindObj, Obj: make(map[string]*Node, len(t))}
		for k, e := range t {
			c, err := fromCBOR(e, depth+1)
			if err != nil {
				return nil, err
			}
			n.Obj[k] = c
		}
		return n, nil
	case []any:
		n := &Node{Kind: KindArr, Arr: make([]*Node, 0, len(t))}
		for _, e := range t {
			c, err := fromCBOR(e, depth+1)
			if err != nil {
				return nil, err
			}
			n.Arr = append(n.Arr, c)
		}
		return n, nil
	}
	return nil, &SyntaxError{fmt.Sprintf("unsupported CBOR item %T", v)}
}

func intText(v any) (string, bool) {
	switch t := v.(type) {
	case uint64:
		return strconv.FormatUint(t, 10), true
	case int64:
		return strconv.FormatInt(t, 10), true
	}
	return "", false
}

// ParseDecimal parses a number literal ("-31.25", "3125e-2", "1E3")
// exactly into mantissa and exponent. At most 18 significant digits.
func ParseDecimal(s string) (mant int64, exp int32, err error) {
	t := s
	neg := false
	if t != "" && (t[0] == '-' || t[0] == '+') {
		neg = t[0] == '-'
		t = t[1:]
	}
	num, expPart, hasExp := strings.Cut(strings.ToLower(t), "e")
	ip, fp, hasDot := strings.Cut(num, ".")
	if ip == "" && (!hasDot || fp == "") {
		return 0, 0, fmt.Errorf("%s is not a number", lit(s))
	}
	digits := ip + fp
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, 0, fmt.Errorf("%s is not a number", lit(s))
		}
	}
	e := int64(-len(fp))
	if hasExp {
		x, perr := strconv.ParseInt(expPart, 10, 32)
		if perr != nil {
			return 0, 0, fmt.Errorf("%s has a bad exponent", lit(s))
		}
		e += x
	}
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return 0, 0, nil
	}
	if len(digits) > 18 {
		// Trailing zeros are not significant: "36.500000000000000000".
		t := strings.TrimRight(digits, "0")
		e += int64(len(digits) - len(t))
		digits = t
	}
	if len(digits) > 18 {
		return 0, 0, fmt.Errorf("%s has more than 18 significant digits", lit(s))
	}
	if e < -30 || e > 30 {
		return 0, 0, fmt.Errorf("%s is out of the decimal range", lit(s))
	}
	m, _ := strconv.ParseInt(digits, 10, 64)
	if neg {
		m = -m
	}
	return m, int32(e), nil
}

// ParseInteger parses a number literal that must be a whole number.
func ParseInteger(s string) (int64, error) {
	m, e, err := ParseDecimal(s)
	if err != nil {
		return 0, err
	}
	for ; e > 0; e-- {
		if m > math.MaxInt64/10 || m < math.MinInt64/10 {
			return 0, fmt.Errorf("%s does not fit in 64 bits", lit(s))
		}
		m *= 10
	}
	for ; e < 0; e++ {
		if m%10 != 0 {
			return 0, fmt.Errorf("%s is not a whole number", lit(s))
		}
		m /= 10
	}
	return m, nil
}

// lit quotes a literal of the message for an error text, shortened.
func lit(s string) string { return strconv.Quote(Clip(s, 40)) }

// Show renders a value for an error message, shortened.
func (n *Node) Show() string {
	var s string
	switch n.Kind {
	case KindNull:
		s = "null"
	case KindBool:
		s = strconv.FormatBool(n.Bool)
	case KindNum:
		s = n.Text
	case KindStr:
		s = strconv.Quote(n.Text)
	case KindObj:
		s = "{…}"
	case KindArr:
		s = "[…]"
	}
	return Clip(s, 48)
}

// Clip shortens s to at most max bytes (max ≥ 4), cutting at a character
// boundary and marking the cut with "…".
func Clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := max - len("…")
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
