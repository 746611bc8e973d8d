package kiosk

// This file is shared, byte for byte apart from the package clause, with
// drivers/recorder/msg.go: both packages parse the same JSON-or-CBOR field
// messages. (A shared drivers/internal package would remove the copy.)

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

// nodeKind is the type of a parsed message value.
type nodeKind uint8

const (
	nNull nodeKind = iota
	nBool
	nNum // s holds the number as decimal text, possibly with an exponent
	nStr
	nObj
	nArr
)

func (k nodeKind) String() string {
	switch k {
	case nNull:
		return "null"
	case nBool:
		return "a bool"
	case nNum:
		return "a number"
	case nStr:
		return "a string"
	case nObj:
		return "an object"
	case nArr:
		return "an array"
	}
	return "?"
}

// node is one value of a message, JSON or CBOR alike. Numbers keep their
// literal text so decimals stay exact.
type node struct {
	k   nodeKind
	b   bool
	s   string
	obj map[string]*node
	arr []*node
}

// maxDepth bounds nesting in both encodings.
const maxDepth = 16

// syntaxError is a message that is neither a well-formed JSON object nor a
// well-formed CBOR map.
type syntaxError struct{ reason string }

func (e *syntaxError) Error() string { return e.reason }

// parseMessage decodes a JSON object or a CBOR map. The first byte (after
// JSON whitespace) tells them apart: '{' is JSON, 0xA0–0xBF is a CBOR map.
// Trailing bytes and duplicate keys are refused in both encodings.
func parseMessage(b []byte) (*node, bool, error) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	if i == len(b) {
		return nil, false, &syntaxError{"empty payload"}
	}
	switch c := b[i]; {
	case c == '{':
		n, err := parseJSON(b[i:])
		return n, false, err
	case c >= 0xA0 && c <= 0xBF && i == 0:
		n, err := parseCBOR(b)
		return n, true, err
	default:
		return nil, false, &syntaxError{fmt.Sprintf("payload starts with byte 0x%02X: neither a JSON object nor a CBOR map", c)}
	}
}

func parseJSON(b []byte) (*node, error) {
	if !utf8.Valid(b) {
		return nil, &syntaxError{"JSON is not valid UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	n, err := jsonValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &syntaxError{fmt.Sprintf("trailing data after the JSON object at byte %d", dec.InputOffset())}
	}
	return n, nil
}

func jsonValue(dec *json.Decoder, depth int) (*node, error) {
	if depth > maxDepth {
		return nil, &syntaxError{fmt.Sprintf("JSON nested deeper than %d levels", maxDepth)}
	}
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, &syntaxError{"JSON ends early"}
		}
		return nil, &syntaxError{fmt.Sprintf("JSON: %v", err)}
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := &node{k: nObj, obj: map[string]*node{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, &syntaxError{fmt.Sprintf("JSON: %v", err)}
				}
				key, _ := kt.(string)
				if _, dup := n.obj[key]; dup {
					return nil, &syntaxError{fmt.Sprintf("duplicate key %q", key)}
				}
				v, err := jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.obj[key] = v
			}
			if _, err := dec.Token(); err != nil {
				return nil, &syntaxError{fmt.Sprintf("JSON: %v", err)}
			}
			return n, nil
		case '[':
			n := &node{k: nArr}
			for dec.More() {
				v, err := jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.arr = append(n.arr, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, &syntaxError{fmt.Sprintf("JSON: %v", err)}
			}
			return n, nil
		}
		return nil, &syntaxError{fmt.Sprintf("JSON: unexpected %v", t)}
	case json.Number:
		return &node{k: nNum, s: string(t)}, nil
	case string:
		return &node{k: nStr, s: t}, nil
	case bool:
		return &node{k: nBool, b: t}, nil
	case nil:
		return &node{k: nNull}, nil
	}
	return nil, &syntaxError{fmt.Sprintf("JSON: unexpected token %v", tok)}
}

var cborMode = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  maxDepth + 2,
		MaxArrayElements: 4096,
		MaxMapPairs:      4096,
		IndefLength:      cbor.IndefLengthAllowed,
		DefaultMapType:   reflect.TypeOf(map[string]any(nil)),
		BigIntDec:        cbor.BigIntDecodePointer,
	}.DecMode()
	if err != nil {
		panic(err) // static options: a programming error
	}
	return m
}()

func parseCBOR(b []byte) (*node, error) {
	var v any
	if err := cborMode.Unmarshal(b, &v); err != nil {
		var dup *cbor.DupMapKeyError
		var extra *cbor.ExtraneousDataError
		switch {
		case errors.As(err, &dup):
			return nil, &syntaxError{fmt.Sprintf("duplicate key %v in CBOR map", dup.Key)}
		case errors.As(err, &extra):
			return nil, &syntaxError{"trailing data after the CBOR map"}
		}
		return nil, &syntaxError{fmt.Sprintf("CBOR: %v", err)}
	}
	return fromCBOR(v, 0)
}

func fromCBOR(v any, depth int) (*node, error) {
	if depth > maxDepth {
		return nil, &syntaxError{fmt.Sprintf("CBOR nested deeper than %d levels", maxDepth)}
	}
	switch t := v.(type) {
	case nil:
		return &node{k: nNull}, nil
	case bool:
		return &node{k: nBool, b: t}, nil
	case string:
		return &node{k: nStr, s: t}, nil
	case uint64:
		return &node{k: nNum, s: strconv.FormatUint(t, 10)}, nil
	case int64:
		return &node{k: nNum, s: strconv.FormatInt(t, 10)}, nil
	case *big.Int:
		return &node{k: nNum, s: t.String()}, nil
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return nil, &syntaxError{fmt.Sprintf("CBOR float %v is not a number", t)}
		}
		// The shortest text that round-trips is what the device meant.
		return &node{k: nNum, s: strconv.FormatFloat(t, 'g', -1, 64)}, nil
	case time.Time:
		return &node{k: nNum, s: strconv.FormatInt(t.UnixMilli(), 10)}, nil
	case cbor.Tag:
		if t.Number == 4 { // decimal fraction [exponent, mantissa]
			a, ok := t.Content.([]any)
			if ok && len(a) == 2 {
				e, eok := intText(a[0])
				m, mok := intText(a[1])
				if eok && mok {
					return &node{k: nNum, s: m + "e" + e}, nil
				}
			}
			return nil, &syntaxError{"CBOR tag 4 (decimal fraction) is not [exponent, mantissa]"}
		}
		return nil, &syntaxError{fmt.Sprintf("unsupported CBOR tag %d", t.Number)}
	case []byte:
		return nil, &syntaxError{"CBOR byte strings are not accepted (use text)"}
	case map[string]any:
		n := &node{k: nObj, obj: make(map[string]*node, len(t))}
		for k, e := range t {
			c, err := fromCBOR(e, depth+1)
			if err != nil {
				return nil, err
			}
			n.obj[k] = c
		}
		return n, nil
	case []any:
		n := &node{k: nArr, arr: make([]*node, 0, len(t))}
		for _, e := range t {
			c, err := fromCBOR(e, depth+1)
			if err != nil {
				return nil, err
			}
			n.arr = append(n.arr, c)
		}
		return n, nil
	}
	return nil, &syntaxError{fmt.Sprintf("unsupported CBOR item %T", v)}
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

// decimalText parses a number literal ("-31.25", "3125e-2", "1E3")
// exactly into mantissa and exponent. At most 18 significant digits.
func decimalText(s string) (mant int64, exp int32, err error) {
	t := s
	neg := false
	if t != "" && (t[0] == '-' || t[0] == '+') {
		neg = t[0] == '-'
		t = t[1:]
	}
	num, expPart, hasExp := strings.Cut(strings.ToLower(t), "e")
	ip, fp, hasDot := strings.Cut(num, ".")
	if ip == "" && (!hasDot || fp == "") {
		return 0, 0, fmt.Errorf("%q is not a number", s)
	}
	digits := ip + fp
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, 0, fmt.Errorf("%q is not a number", s)
		}
	}
	e := int64(-len(fp))
	if hasExp {
		x, perr := strconv.ParseInt(expPart, 10, 32)
		if perr != nil {
			return 0, 0, fmt.Errorf("%q has a bad exponent", s)
		}
		e += x
	}
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return 0, 0, nil
	}
	if len(digits) > 18 {
		return 0, 0, fmt.Errorf("%q has more than 18 significant digits", s)
	}
	if e < -30 || e > 30 {
		return 0, 0, fmt.Errorf("%q is out of the decimal range", s)
	}
	m, _ := strconv.ParseInt(digits, 10, 64)
	if neg {
		m = -m
	}
	return m, int32(e), nil
}

// integerText parses a number literal that must be a whole number.
func integerText(s string) (int64, error) {
	m, e, err := decimalText(s)
	if err != nil {
		return 0, err
	}
	for ; e > 0; e-- {
		if m > math.MaxInt64/10 || m < math.MinInt64/10 {
			return 0, fmt.Errorf("%q does not fit in 64 bits", s)
		}
		m *= 10
	}
	for ; e < 0; e++ {
		if m%10 != 0 {
			return 0, fmt.Errorf("%q is not a whole number", s)
		}
		m /= 10
	}
	return m, nil
}

// show renders a value for an error message, shortened.
func (n *node) show() string {
	var s string
	switch n.k {
	case nNull:
		s = "null"
	case nBool:
		s = strconv.FormatBool(n.b)
	case nNum:
		s = n.s
	case nStr:
		s = strconv.Quote(n.s)
	case nObj:
		s = "{…}"
	case nArr:
		s = "[…]"
	}
	if len(s) > 48 {
		s = s[:45] + "…"
	}
	return s
}
