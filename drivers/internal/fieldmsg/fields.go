package fieldmsg

import (
	"fmt"
	"math/big"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/townlink/townlink/drivers"
)

// Fields reads typed fields of one message object for driver D. The first
// failure sticks: later calls return zero values and Err reports the first.
// The typed readers fail with D's Schema sentinel.
type Fields[D Driver] struct {
	Device, Event string
	Obj           map[string]*Node

	first  error
	parent *Fields[D] // Nested: failures also stick here
	path   string     // Nested: prefix of field names, with its dot
}

// NewFields returns a reader of obj, a message object of device and event.
func NewFields[D Driver](device, event string, obj map[string]*Node) *Fields[D] {
	return &Fields[D]{Device: device, Event: event, Obj: obj}
}

// Fork returns a reader of the same object with a failure of its own: for
// optional fields that are checked one by one.
func (f *Fields[D]) Fork() *Fields[D] {
	return NewFields[D](f.Device, f.Event, f.Obj)
}

// Nested returns a reader of obj, the object in field name: its failures
// name the field "name.<field>" and also stick in f and f's own parents
// (those that have none yet).
func (f *Fields[D]) Nested(name string, obj map[string]*Node) *Fields[D] {
	return &Fields[D]{Device: f.Device, Event: f.Event, Obj: obj, parent: f, path: f.path + name + "."}
}

// Err returns the first failure, a *FieldError[D], or nil.
func (f *Fields[D]) Err() error { return f.first }

// Fail records a failure of field (a dotted path; n is its value, nil when
// missing) unless one is already recorded.
func (f *Fields[D]) Fail(sentinel error, field string, n *Node, reason string) {
	if f.first != nil {
		return
	}
	v := ""
	if n != nil {
		v = n.Show()
	}
	f.first = &FieldError[D]{Device: f.Device, Event: f.Event, Field: f.path + field, Value: v, Reason: reason, Err: sentinel}
	for p := f.parent; p != nil && p.first == nil; p = p.parent {
		p.first = f.first
	}
}

func (f *Fields[D]) schema(field string, n *Node, reason string) {
	var d D
	f.Fail(d.Schema(), field, n, reason)
}

// Get returns a field, or nil when it is absent or null (and after a
// failure). A missing required field is a failure.
func (f *Fields[D]) Get(name string, required bool) *Node {
	n := f.Obj[name]
	if n != nil && n.Kind == KindNull {
		n = nil
	}
	if n == nil && required {
		f.schema(name, nil, "missing (required)")
	}
	if f.first != nil {
		return nil
	}
	return n
}

// Typed is Get for a field that must be of kind k.
func (f *Fields[D]) Typed(name string, required bool, k Kind) *Node {
	n := f.Get(name, required)
	if n != nil && n.Kind != k {
		f.schema(name, n, fmt.Sprintf("is %s, want %s", n.Kind, k))
		return nil
	}
	return n
}

// Text reads a string of 1..max bytes of printable UTF-8.
func (f *Fields[D]) Text(name string, required bool, max int) (string, bool) {
	n := f.Typed(name, required, KindStr)
	if n == nil {
		return "", false
	}
	switch {
	case n.Text == "":
		f.schema(name, n, "is empty")
	case len(n.Text) > max:
		f.schema(name, n, fmt.Sprintf("is longer than %d bytes", max))
	case !Printable(n.Text):
		f.schema(name, n, "contains control characters")
	default:
		return n.Text, true
	}
	return "", false
}

// Printable reports whether s has no control characters and no invalid
// UTF-8.
func Printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// Enum reads a string that must be one of allowed, compared without regard
// to ASCII case ("OK", "Video"); it returns the spelling in allowed.
func (f *Fields[D]) Enum(name string, required bool, allowed ...string) (string, bool) {
	n := f.Typed(name, required, KindStr)
	if n == nil {
		return "", false
	}
	i := slices.IndexFunc(allowed, func(a string) bool { return strings.EqualFold(a, n.Text) && isASCII(n.Text) })
	if i < 0 {
		f.schema(name, n, "is not one of "+strings.Join(allowed, ", "))
		return "", false
	}
	return allowed[i], true
}

// isASCII: strings.EqualFold also folds some non-ASCII letters (the Kelvin
// sign matches 'k'); an enum value is plain ASCII.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Bool reads a bool.
func (f *Fields[D]) Bool(name string, required bool) (bool, bool) {
	n := f.Typed(name, required, KindBool)
	if n == nil {
		return false, false
	}
	return n.Bool, true
}

// Int reads a whole number in [lo, hi].
func (f *Fields[D]) Int(name string, required bool, lo, hi int64) (int64, bool) {
	n := f.Typed(name, required, KindNum)
	if n == nil {
		return 0, false
	}
	v, err := ParseInteger(n.Text)
	if err != nil {
		f.schema(name, n, err.Error())
		return 0, false
	}
	if v < lo || v > hi {
		f.schema(name, n, fmt.Sprintf("out of range [%d, %d]", lo, hi))
		return 0, false
	}
	return v, true
}

// Bound is a decimal range, limits included; HiOpen makes the upper one
// exclusive. Lo and Hi are decimal literals ("-90", "0.5").
type Bound struct {
	Lo, Hi string
	HiOpen bool
}

// Decimal reads a number exactly (from its literal) within b.
func (f *Fields[D]) Decimal(name string, required bool, b Bound) (drivers.Value, bool) {
	n := f.Typed(name, required, KindNum)
	if n == nil {
		return drivers.Value{}, false
	}
	m, e, err := ParseDecimal(n.Text)
	if err != nil {
		f.schema(name, n, err.Error())
		return drivers.Value{}, false
	}
	v := drivers.Dec(m, e)
	r := v.Rat()
	lo, _ := new(big.Rat).SetString(b.Lo)
	hi, _ := new(big.Rat).SetString(b.Hi)
	c := r.Cmp(hi)
	if r.Cmp(lo) < 0 || c > 0 || (b.HiOpen && c == 0) {
		closing := "]"
		if b.HiOpen {
			closing = ")"
		}
		f.schema(name, n, fmt.Sprintf("out of range [%s, %s%s", b.Lo, b.Hi, closing))
		return drivers.Value{}, false
	}
	return v, true
}

// Hex reads exactly size hex digits in any case and returns them in lower
// case: the case of a digest carries no meaning.
func (f *Fields[D]) Hex(name string, required bool, size int) (string, bool) {
	n := f.Typed(name, required, KindStr)
	if n == nil {
		return "", false
	}
	if len(n.Text) != size {
		f.schema(name, n, fmt.Sprintf("has %d characters, want %d hex digits", len(n.Text), size))
		return "", false
	}
	for i := 0; i < len(n.Text); i++ {
		if !isHex(n.Text[i]) {
			f.schema(name, n, fmt.Sprintf("byte %d is not a hex digit", i))
			return "", false
		}
	}
	return strings.ToLower(n.Text), true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// ID reads an identifier of 1..max ASCII bytes: a letter or digit, then
// letters, digits, '-' and '_' ("100234", "SZ-100234", "zf_07"). It is
// kept as sent: case is not folded.
func (f *Fields[D]) ID(name string, required bool, max int) (string, bool) {
	n := f.Typed(name, required, KindStr)
	if n == nil {
		return "", false
	}
	if !ValidID(n.Text, max) {
		f.schema(name, n, fmt.Sprintf("want 1 to %d ASCII letters, digits, '-' or '_', starting with a letter or digit", max))
		return "", false
	}
	return n.Text, true
}

// ValidID reports whether s is [A-Za-z0-9][A-Za-z0-9_-]{0,max-1}.
func ValidID(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case (c == '-' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}
