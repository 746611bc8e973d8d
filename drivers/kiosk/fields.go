package kiosk

import (
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/townlink/townlink/drivers"
)

// fields reads typed fields of one message object. The first failure
// sticks: later calls return zero values and err() reports the first.
type fields struct {
	device, event string
	obj           map[string]*node
	first         error
}

func (f *fields) err() error { return f.first }

func (f *fields) fail(sentinel error, field string, n *node, reason string) {
	if f.first != nil {
		return
	}
	v := ""
	if n != nil {
		v = n.show()
	}
	f.first = &FieldError{Device: f.device, Event: f.event, Field: field, Value: v, Reason: reason, Err: sentinel}
}

// get returns a field, or nil when it is absent or null.
func (f *fields) get(name string, required bool) *node {
	n := f.obj[name]
	if n != nil && n.k == nNull {
		n = nil
	}
	if n == nil && required {
		f.fail(ErrSchema, name, nil, "missing (required)")
	}
	if f.first != nil {
		return nil
	}
	return n
}

func (f *fields) typed(name string, required bool, k nodeKind) *node {
	n := f.get(name, required)
	if n != nil && n.k != k {
		f.fail(ErrSchema, name, n, fmt.Sprintf("is %s, want %s", n.k, k))
		return nil
	}
	return n
}

// text reads a string of 1..max bytes of printable UTF-8.
func (f *fields) text(name string, required bool, max int) (string, bool) {
	n := f.typed(name, required, nStr)
	if n == nil {
		return "", false
	}
	switch {
	case n.s == "":
		f.fail(ErrSchema, name, n, "is empty")
	case len(n.s) > max:
		f.fail(ErrSchema, name, n, fmt.Sprintf("is longer than %d bytes", max))
	case !printable(n.s):
		f.fail(ErrSchema, name, n, "contains control characters")
	default:
		return n.s, true
	}
	return "", false
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// enum reads a string that must be one of allowed.
func (f *fields) enum(name string, required bool, allowed ...string) (string, bool) {
	n := f.typed(name, required, nStr)
	if n == nil {
		return "", false
	}
	if !slices.Contains(allowed, n.s) {
		f.fail(ErrSchema, name, n, "is not one of "+strings.Join(allowed, ", "))
		return "", false
	}
	return n.s, true
}

func (f *fields) boolean(name string, required bool) (bool, bool) {
	n := f.typed(name, required, nBool)
	if n == nil {
		return false, false
	}
	return n.b, true
}

// integer reads a whole number in [lo, hi].
func (f *fields) integer(name string, required bool, lo, hi int64) (int64, bool) {
	n := f.typed(name, required, nNum)
	if n == nil {
		return 0, false
	}
	v, err := integerText(n.s)
	if err != nil {
		f.fail(ErrSchema, name, n, err.Error())
		return 0, false
	}
	if v < lo || v > hi {
		f.fail(ErrSchema, name, n, fmt.Sprintf("out of range [%d, %d]", lo, hi))
		return 0, false
	}
	return v, true
}

// bound is a decimal range limit; hiOpen makes the upper one exclusive.
type bound struct {
	lo, hi string
	hiOpen bool
}

// decimal reads a number exactly (from its literal) within b.
func (f *fields) decimal(name string, required bool, b bound) (drivers.Value, bool) {
	n := f.typed(name, required, nNum)
	if n == nil {
		return drivers.Value{}, false
	}
	m, e, err := decimalText(n.s)
	if err != nil {
		f.fail(ErrSchema, name, n, err.Error())
		return drivers.Value{}, false
	}
	v := drivers.Dec(m, e)
	r := v.Rat()
	lo, _ := new(big.Rat).SetString(b.lo)
	hi, _ := new(big.Rat).SetString(b.hi)
	c := r.Cmp(hi)
	if r.Cmp(lo) < 0 || c > 0 || (b.hiOpen && c == 0) {
		closing := "]"
		if b.hiOpen {
			closing = ")"
		}
		f.fail(ErrSchema, name, n, fmt.Sprintf("out of range [%s, %s%s", b.lo, b.hi, closing))
		return drivers.Value{}, false
	}
	return v, true
}

// Plausible device times: from 2020 to a day ahead of the gateway's clock.
var epoch2020 = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// instant reads a time as milliseconds since the Unix epoch (a number) or
// an RFC 3339 text with a zone, and refuses one outside [2020, now+1 day].
func (f *fields) instant(name string, required bool, now time.Time) (int64, bool) {
	n := f.get(name, required)
	if n == nil {
		return 0, false
	}
	var ms int64
	switch n.k {
	case nNum:
		v, err := integerText(n.s)
		if err != nil {
			f.fail(ErrSchema, name, n, "not milliseconds since the epoch: "+err.Error())
			return 0, false
		}
		ms = v
	case nStr:
		t, err := time.Parse(time.RFC3339Nano, n.s)
		if err != nil {
			f.fail(ErrSchema, name, n, "not an RFC 3339 time with a zone")
			return 0, false
		}
		ms = t.UnixMilli()
	default:
		f.fail(ErrSchema, name, n, fmt.Sprintf("is %s, want ms since the epoch or RFC 3339", n.k))
		return 0, false
	}
	if ms < epoch2020 || ms > now.Add(24*time.Hour).UnixMilli() {
		f.fail(ErrSchema, name, n, "implausible time (before 2020 or more than a day ahead)")
		return 0, false
	}
	return ms, true
}

// hex reads lowercase hex of exactly size characters.
func (f *fields) hex(name string, required bool, size int) (string, bool) {
	n := f.typed(name, required, nStr)
	if n == nil {
		return "", false
	}
	if len(n.s) != size {
		f.fail(ErrSchema, name, n, fmt.Sprintf("has %d characters, want %d lowercase hex digits", len(n.s), size))
		return "", false
	}
	for i := 0; i < len(n.s); i++ {
		c := n.s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			f.fail(ErrSchema, name, n, fmt.Sprintf("byte %d is not a lowercase hex digit", i))
			return "", false
		}
	}
	return n.s, true
}

// alnum reads 1..max ASCII letters and digits.
func (f *fields) alnum(name string, required bool, max int) (string, bool) {
	n := f.typed(name, required, nStr)
	if n == nil {
		return "", false
	}
	ok := n.s != "" && len(n.s) <= max
	for i := 0; ok && i < len(n.s); i++ {
		c := n.s[i]
		ok = c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	if !ok {
		f.fail(ErrSchema, name, n, fmt.Sprintf("want 1 to %d ASCII letters or digits", max))
		return "", false
	}
	return n.s, true
}
