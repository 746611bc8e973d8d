package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/fxamacker/cbor/v2"
)

// Limits on what a decoder accepts.
const (
	MaxInputBytes = 64 << 20 // one batch (or any other message)
	MaxRecords    = 100_000  // records in one batch
	maxMapPairs   = 100_000  // pairs in any one map
	maxNesting    = 16       // arrays, maps and tags nested in each other
)

// CBOR major types.
const (
	majUint  = 0
	majNeg   = 1
	majBytes = 2
	majText  = 3
	majArray = 4
	majMap   = 5
	majTag   = 6
	majOther = 7
)

// codec holds the immutable CBOR modes. They are safe for concurrent use.
type codec struct {
	enc cbor.EncMode
	dec cbor.DecMode
}

// modes is built once; both modes are immutable.
var modes = newCodec()

func newCodec() codec {
	eo := cbor.CoreDetEncOptions() // RFC 8949 §4.2.1
	eo.NilContainers = cbor.NilContainerAsEmpty
	em, err := eo.EncMode()
	if err != nil {
		panic("wire: CBOR encoding options: " + err.Error())
	}
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		MaxNestedLevels:  maxNesting,
		MaxArrayElements: MaxRecords,
		MaxMapPairs:      maxMapPairs,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic("wire: CBOR decoding options: " + err.Error())
	}
	return codec{enc: em, dec: dm}
}

// checkInput runs the structural checks every decoder starts with: size,
// well-formedness, one item and nothing after it, definite lengths, limits.
func checkInput(p []byte) error {
	if len(p) > MaxInputBytes {
		return &Error{Err: ErrTooLarge, Msg: fmt.Sprintf("%d bytes, limit %d", len(p), MaxInputBytes)}
	}
	if len(p) == 0 {
		return &Error{Err: ErrMalformed, Msg: "empty input"}
	}
	if err := modes.dec.Wellformed(p); err != nil {
		return classify(err)
	}
	return nil
}

// classify turns a library well-formedness error into one of ours.
func classify(err error) error {
	var (
		nest  *cbor.MaxNestedLevelError
		arr   *cbor.MaxArrayElementsError
		pairs *cbor.MaxMapPairsError
		extra *cbor.ExtraneousDataError
		indef *cbor.IndefiniteLengthError
	)
	switch {
	case errors.As(err, &nest), errors.As(err, &arr), errors.As(err, &pairs):
		return &Error{Err: ErrTooLarge, Msg: err.Error()}
	case errors.As(err, &extra):
		return &Error{Err: ErrMalformed, Msg: "trailing bytes after the data item (" + err.Error() + ")"}
	case errors.As(err, &indef):
		return &Error{Err: ErrMalformed, Msg: "indefinite-length item (" + err.Error() + ")"}
	}
	return &Error{Err: ErrMalformed, Msg: err.Error()}
}

// head decodes the initial byte and argument of the item at p[off:].
// It rejects indefinite lengths and reserved additional information.
func head(p []byte, off int) (major byte, arg uint64, n int, err error) {
	if off >= len(p) {
		return 0, 0, 0, errors.New("unexpected end of data")
	}
	ib := p[off]
	major, ai := ib>>5, ib&0x1f
	switch {
	case ai < 24:
		return major, uint64(ai), 1, nil
	case ai <= 27:
		size := 1 << (ai - 24)
		if len(p)-off-1 < size {
			return 0, 0, 0, errors.New("unexpected end of data")
		}
		b := p[off+1 : off+1+size]
		switch size {
		case 1:
			arg = uint64(b[0])
		case 2:
			arg = uint64(binary.BigEndian.Uint16(b))
		case 4:
			arg = uint64(binary.BigEndian.Uint32(b))
		default:
			arg = binary.BigEndian.Uint64(b)
		}
		return major, arg, 1 + size, nil
	case ai == 31:
		return 0, 0, 0, errors.New("indefinite length not allowed")
	}
	return 0, 0, 0, fmt.Errorf("reserved additional information %d", ai)
}

// skip returns the offset just past the item at p[off:]. Lengths are
// checked against the data, so a hostile length cannot make it loop long.
func skip(p []byte, off, depth int) (int, error) {
	if depth > maxNesting {
		return 0, errors.New("nested too deeply")
	}
	major, arg, n, err := head(p, off)
	if err != nil {
		return 0, err
	}
	off += n
	switch major {
	case majBytes, majText:
		if arg > uint64(len(p)-off) {
			return 0, errors.New("unexpected end of data")
		}
		return off + int(arg), nil
	case majArray, majMap:
		if arg > uint64(len(p)-off) { // every item takes at least one byte
			return 0, errors.New("unexpected end of data")
		}
		items := int(arg)
		if major == majMap {
			items *= 2
		}
		for range items {
			if off, err = skip(p, off, depth+1); err != nil {
				return 0, err
			}
		}
		return off, nil
	case majTag:
		return skip(p, off, depth+1)
	}
	return off, nil
}

// appendHead appends the shortest head for major and arg.
func appendHead(dst []byte, major byte, arg uint64) []byte {
	m := major << 5
	switch {
	case arg < 24:
		return append(dst, m|byte(arg))
	case arg <= math.MaxUint8:
		return append(dst, m|24, byte(arg))
	case arg <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, m|25), uint16(arg))
	case arg <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, m|26), uint32(arg))
	}
	return binary.BigEndian.AppendUint64(append(dst, m|27), arg)
}

func appendUint(dst []byte, v uint64) []byte { return appendHead(dst, majUint, v) }

func appendInt(dst []byte, v int64) []byte {
	if v < 0 {
		return appendHead(dst, majNeg, uint64(-1-v))
	}
	return appendHead(dst, majUint, uint64(v))
}

func appendText(dst []byte, s string) []byte {
	return append(appendHead(dst, majText, uint64(len(s))), s...)
}

func appendBytes(dst []byte, b []byte) []byte {
	return append(appendHead(dst, majBytes, uint64(len(b))), b...)
}

// describe names the type of the (well-formed) item raw, for errors.
func describe(raw []byte) string {
	major, arg, _, err := head(raw, 0)
	if err != nil {
		return "malformed item"
	}
	switch major {
	case majUint:
		return "unsigned integer"
	case majNeg:
		return "negative integer"
	case majBytes:
		return "byte string"
	case majText:
		return "text string"
	case majArray:
		return "array"
	case majMap:
		return "map"
	case majTag:
		switch arg {
		case 2, 3:
			return "tag " + strconv.FormatUint(arg, 10) + " (bignum)"
		case 4:
			return "tag 4 (decimal fraction)"
		}
		return "tag " + strconv.FormatUint(arg, 10)
	}
	switch raw[0] & 0x1f {
	case 20, 21:
		return "bool"
	case 22:
		return "null"
	case 23:
		return "undefined"
	case 25, 26, 27:
		return "float"
	}
	return "simple value " + strconv.FormatUint(arg, 10)
}

// Typed accessors for the raw value of one map key. raw is well-formed
// (checked by checkInput) and exactly one item.

func wantUint(raw []byte) (uint64, error) {
	major, arg, _, err := head(raw, 0)
	if err != nil || major != majUint {
		return 0, fmt.Errorf("want unsigned integer, got %s", describe(raw))
	}
	return arg, nil
}

func wantInt(raw []byte) (int64, error) {
	major, arg, _, err := head(raw, 0)
	if err != nil || (major != majUint && major != majNeg) {
		return 0, fmt.Errorf("want integer, got %s", describe(raw))
	}
	if arg > math.MaxInt64 {
		if major == majUint {
			return 0, fmt.Errorf("integer %d out of int64 range", arg)
		}
		return 0, fmt.Errorf("integer -1-%d out of int64 range", arg)
	}
	if major == majNeg {
		return -1 - int64(arg), nil
	}
	return int64(arg), nil
}

func wantText(raw []byte) (string, error) {
	major, arg, n, err := head(raw, 0)
	if err != nil || major != majText || uint64(len(raw)-n) != arg {
		return "", fmt.Errorf("want text string, got %s", describe(raw))
	}
	return string(raw[n:]), nil
}

func wantBytes(raw []byte) ([]byte, error) {
	major, arg, n, err := head(raw, 0)
	if err != nil || major != majBytes || uint64(len(raw)-n) != arg {
		return nil, fmt.Errorf("want byte string, got %s", describe(raw))
	}
	return append([]byte(nil), raw[n:]...), nil
}

func wantBool(raw []byte) (bool, error) {
	if len(raw) == 1 && (raw[0] == 0xf4 || raw[0] == 0xf5) {
		return raw[0] == 0xf5, nil
	}
	return false, fmt.Errorf("want bool, got %s", describe(raw))
}

// wantMap decodes a map with text keys into raw values; the library
// rejects duplicate keys (all pairs are checked) and non-text keys.
func wantMap(raw []byte) (map[string]cbor.RawMessage, error) {
	major, _, _, err := head(raw, 0)
	if err != nil || major != majMap {
		return nil, fmt.Errorf("want map, got %s", describe(raw))
	}
	m := map[string]cbor.RawMessage{}
	if err := modes.dec.Unmarshal(raw, &m); err != nil {
		return nil, mapErr(err)
	}
	return m, nil
}

// eachPair calls fn with the encoded key text and the raw value of each
// pair of the well-formed map item raw, in encoded order. Keys must be
// text strings. fn sees subslices of raw: it must copy what it keeps.
func eachPair(raw []byte, fn func(key, val []byte) error) error {
	major, n, off, err := head(raw, 0)
	if err != nil || major != majMap {
		return fmt.Errorf("want map, got %s", describe(raw))
	}
	for range n {
		kmaj, klen, kn, err := head(raw, off)
		if err != nil {
			return err
		}
		if kmaj != majText {
			return fmt.Errorf("map keys must be text strings, got %s", describe(raw[off:]))
		}
		kstart := off + kn
		if klen > uint64(len(raw)-kstart) {
			return errors.New("unexpected end of data")
		}
		kend := kstart + int(klen)
		vend, err := skip(raw, kend, 1)
		if err != nil {
			return err
		}
		if err := fn(raw[kstart:kend], raw[kend:vend]); err != nil {
			return err
		}
		off = vend
	}
	return nil
}

func mapErr(err error) error {
	var dup *cbor.DupMapKeyError
	if errors.As(err, &dup) {
		return fmt.Errorf("duplicate key %v", dup.Key)
	}
	var te *cbor.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("map keys must be text strings (%v)", err)
	}
	return err
}

// topMap is the first step of every message decoder.
func topMap(p []byte, what string) (map[string]cbor.RawMessage, error) {
	if err := checkInput(p); err != nil {
		return nil, err
	}
	m, err := wantMap(p)
	if err != nil {
		return nil, &Error{Err: ErrSchema, Msg: what + ": " + err.Error()}
	}
	return m, nil
}

// keys checks that m has every key in required and no key outside
// required and optional. Errors name the key; the first offender in
// sorted order is reported so errors are stable.
func keys(m map[string]cbor.RawMessage, required, optional []string) error {
	for _, k := range required {
		if _, ok := m[k]; !ok {
			return schemaErr(k, "missing required key")
		}
	}
	if len(m) == len(required) {
		return nil
	}
	var unknown string
	found := false
	for k := range m {
		if contains(required, k) || contains(optional, k) {
			continue
		}
		if !found || k < unknown {
			unknown, found = k, true
		}
	}
	if found {
		return schemaErr(strconv.Quote(unknown), "unknown key")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func uitoa(u uint64) string { return strconv.FormatUint(u, 10) }
