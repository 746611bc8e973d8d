package config

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/townlink/townlink/drivers"
)

// decoder walks yaml.Nodes and collects problems with their positions.
type decoder struct {
	file string
	errs Errors
}

// hasErrUnder reports whether a problem was recorded at path or below it.
func (d *decoder) hasErrUnder(path string) bool {
	for _, e := range d.errs {
		if e.Path == path || strings.HasPrefix(e.Path, path+".") || strings.HasPrefix(e.Path, path+"[") {
			return true
		}
	}
	return false
}

// errAt records a problem at node n (nil n: the file as a whole).
func (d *decoder) errAt(n *yaml.Node, path, format string, args ...any) {
	e := &Error{File: d.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
		if n.Kind == yaml.ScalarNode {
			e.Msg += fullWidthHint(n.Value)
		}
	}
	d.errs = append(d.errs, e)
}

// fullWidthHint explains a value typed with a Chinese input method in
// full-width mode (９６００, ｅｖｅｎ, a full-width space), or is "".
func fullWidthHint(s string) string {
	for _, r := range s {
		if r == '\u3000' || (r >= '\uFF01' && r <= '\uFF5E') {
			return fmt.Sprintf(" (%s is a full-width character: type it with the input method in half-width/English mode)", runeName(r))
		}
	}
	return ""
}

// runeName quotes r, naming the full-width space that would print as a gap.
func runeName(r rune) string {
	if r == '\u3000' {
		return "space (U+3000)"
	}
	return fmt.Sprintf("%q", r)
}

// deref follows aliases.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 64; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names what a node is, for "expected X, found Y" messages.
func describe(n *yaml.Node) string {
	n = deref(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping (key: value lines)"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "an empty value"
		}
		return fmt.Sprintf("%q", clip(n.Value))
	}
	return "something else"
}

// clip shortens long values quoted in messages.
func clip(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// field is one key: value pair of a mapping.
type field struct {
	key, val *yaml.Node
	path     string
}

// fields is a decoded mapping.
type fields struct {
	node *yaml.Node // the mapping (nil if absent)
	path string
	m    map[string]field
}

// get returns the field for key; ok is false when it is absent or null.
func (f *fields) get(key string) (field, bool) {
	fl, ok := f.m[key]
	if !ok || isNull(fl.val) {
		return fl, false
	}
	return fl, true
}

// has reports whether key was written (even as null).
func (f *fields) has(key string) bool {
	_, ok := f.m[key]
	return ok
}

// keys returns the written keys, for keySet.
func (f *fields) keys() keySet {
	ks := make(keySet, len(f.m))
	for k, fl := range f.m {
		if !isNull(fl.val) {
			ks[k] = true
		}
	}
	return ks
}

// pos is where to report a problem about the mapping as a whole.
func (f *fields) pos() *yaml.Node { return f.node }

// mapping decodes n as a mapping with the given known keys. Unknown and
// duplicate keys are reported. A null or absent n is an empty mapping.
// ok is false when n is something other than a mapping.
func (d *decoder) mapping(n *yaml.Node, path string, known []string, hint func(key string) string) (fields, bool) {
	f := fields{path: path, m: map[string]field{}}
	n = deref(n)
	if isNull(n) {
		f.node = n
		return f, true
	}
	f.node = n
	if n.Kind != yaml.MappingNode {
		what := path
		if what == "" {
			what = "the file"
		}
		d.errAt(n, path, "expected a mapping (key: value lines), found %s; %s must be written as indented key: value lines", describe(n), what)
		return f, false
	}
	d.collect(&f, n, path, known, hint, false, 0)
	return f, true
}

func (d *decoder) collect(f *fields, n *yaml.Node, path string, known []string, hint func(string) string, merged bool, depth int) {
	if depth > 8 {
		return
	}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			d.errAt(n.Content[i], path, "keys must be plain words, found %s", describe(k))
			continue
		}
		if k.Value == "<<" && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if prev, dup := f.m[k.Value]; dup {
			if !merged {
				d.errAt(k, path, "duplicate key %q (first written at line %d; keep one)", k.Value, prev.key.Line)
			}
			continue
		}
		if path == "" && strings.HasPrefix(k.Value, "x-") {
			continue // top-level x-… keys hold anchors for reuse (<<: *name)
		}
		if !contains(known, k.Value) {
			msg := fmt.Sprintf("unknown key %q", clip(k.Value))
			if s := didYouMean(k.Value, known); s != "" {
				msg += s
			} else if h := hintFor(hint, k.Value); h != "" {
				msg += " (" + h + ")"
			} else if len(known) <= 12 {
				msg += " (known keys: " + strings.Join(known, ", ") + ")"
			}
			d.errAt(k, path, "%s", msg)
			continue
		}
		f.m[k.Value] = field{key: k, val: v, path: join(path, k.Value)}
	}
	// Merge keys (<<: *anchor): explicit keys win, earlier merges win.
	for _, m := range merges {
		m = deref(m)
		var srcs []*yaml.Node
		switch {
		case m != nil && m.Kind == yaml.MappingNode:
			srcs = []*yaml.Node{m}
		case m != nil && m.Kind == yaml.SequenceNode:
			for _, s := range m.Content {
				srcs = append(srcs, deref(s))
			}
		}
		for _, s := range srcs {
			if s == nil || s.Kind != yaml.MappingNode {
				d.errAt(m, path, "<< must refer to a mapping (<<: *name) or a list of them, found %s", describe(s))
				continue
			}
			d.collect(f, s, path, known, hint, true, depth+1)
		}
	}
}

func hintFor(hint func(string) string, key string) string {
	if hint == nil {
		return ""
	}
	return hint(key)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// scalar returns the field's value as a scalar node.
func (d *decoder) scalar(f field) (*yaml.Node, bool) {
	n := deref(f.val)
	if n == nil || n.Kind != yaml.ScalarNode {
		d.errAt(n, f.path, "expected a single value, found %s", describe(n))
		return nil, false
	}
	return n, true
}

// str decodes any scalar as its literal text (so county: 320583 and
// county: "320583" are the same).
func (d *decoder) str(f field) (string, bool) {
	n, ok := d.scalar(f)
	if !ok {
		return "", false
	}
	return n.Value, true
}

// absFile decodes an optional file path: "" or absolute (the gateway does not
// run in the directory the file was written in, systemd starts it in /).
func (d *decoder) absFile(f field, example string) (string, bool) {
	s, ok := d.str(f)
	if !ok || s == "" || s == RedactedMark { // the config command's copy stays loadable
		return s, ok
	}
	if !filepath.IsAbs(s) {
		d.errAt(deref(f.val), f.path, "%q is not an absolute path (write it from /, e.g. %s)", clip(s), example)
		return s, false // kept, so that the key does not also count as missing
	}
	return s, true
}

// nonEmpty decodes a string that must not be "".
func (d *decoder) nonEmpty(f field, what string) (string, bool) {
	s, ok := d.str(f)
	if !ok {
		return "", false
	}
	if strings.TrimSpace(s) == "" {
		d.errAt(deref(f.val), f.path, "is empty; write %s", what)
		return "", false
	}
	return s, true
}

// parseInt parses decimal (leading zeros allowed), 0x hex, 0o octal, 0b
// binary, with an optional sign.
func parseInt(s string) (int64, bool) {
	t := s
	neg := false
	if strings.HasPrefix(t, "-") || strings.HasPrefix(t, "+") {
		neg = t[0] == '-'
		t = t[1:]
	}
	base := 10
	if len(t) > 2 && t[0] == '0' {
		switch t[1] {
		case 'x', 'X':
			base, t = 16, t[2:]
		case 'o', 'O':
			base, t = 8, t[2:]
		case 'b', 'B':
			base, t = 2, t[2:]
		}
	}
	if t == "" || t[0] == '+' || t[0] == '-' {
		return 0, false
	}
	v, err := strconv.ParseInt(t, base, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// integer decodes a whole number in [lo, hi]; rangeHint explains the range.
func (d *decoder) integer(f field, lo, hi int64, rangeHint string) (int, bool) {
	n, ok := d.scalar(f)
	if !ok {
		return 0, false
	}
	v, ok := parseInt(n.Value)
	if !ok {
		d.errAt(n, f.path, "%q is not a whole number", clip(n.Value))
		return 0, false
	}
	if v < lo || v > hi {
		d.errAt(n, f.path, "%s is out of range (%s)", n.Value, rangeHint)
		return 0, false
	}
	return int(v), true
}

// duration decodes a Go duration in [lo, hi] (hi 0: no upper bound).
func (d *decoder) duration(f field, lo, hi time.Duration) (time.Duration, bool) {
	n, ok := d.scalar(f)
	if !ok {
		return 0, false
	}
	s := strings.TrimSpace(n.Value)
	v, err := time.ParseDuration(s)
	if err != nil {
		switch {
		case s != "" && strings.Trim(s, "0123456789.") == "":
			d.errAt(n, f.path, "%q is not a duration (write it with a unit, e.g. %ss or 1m)", clip(n.Value), s)
		case strings.HasSuffix(s, "d"):
			d.errAt(n, f.path, "%q is not a duration (there is no day unit; write hours, e.g. 24h)", clip(n.Value))
		default:
			d.errAt(n, f.path, "%q is not a duration (write it like 500ms, 10s, 1m or 1h30m)", clip(n.Value))
		}
		return 0, false
	}
	if v < lo {
		if lo == 0 {
			d.errAt(n, f.path, "%s is negative", s)
		} else {
			d.errAt(n, f.path, "%s is too short (at least %s)", s, lo)
		}
		return 0, false
	}
	if hi > 0 && v > hi {
		d.errAt(n, f.path, "%s is too long (at most %s)", s, hi)
		return 0, false
	}
	return v, true
}

// size decodes a ByteSize in [lo, hi].
func (d *decoder) size(f field, lo, hi ByteSize) (ByteSize, bool) {
	n, ok := d.scalar(f)
	if !ok {
		return 0, false
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		d.errAt(n, f.path, "%s", strings.TrimPrefix(err.Error(), errByteSize.Error()+": "))
		return 0, false
	}
	if v < lo || v > hi {
		d.errAt(n, f.path, "%s is out of range (%s..%s)", n.Value, lo, hi)
		return 0, false
	}
	return v, true
}

// decimal decodes an exact decimal from the node's literal text, never
// through a float64: scale: 0.1 and scale: "0.1" are the same.
func (d *decoder) decimal(f field) (drivers.Value, bool) {
	n, ok := d.scalar(f)
	if !ok {
		return drivers.Value{}, false
	}
	v, err := drivers.ParseDecimal(strings.TrimSpace(n.Value))
	if err != nil {
		if strings.Contains(err.Error(), "significant digits") {
			d.errAt(n, f.path, "%q has more than 18 significant digits", clip(n.Value))
		} else {
			d.errAt(n, f.path, "%q is not a decimal number (write it like 0.01 or -12.5, without exponent or units)", clip(n.Value))
		}
		return drivers.Value{}, false
	}
	return v, true
}

// enum decodes one of allowed; what names the thing for the message.
func (d *decoder) enum(f field, what string, allowed ...string) (string, bool) {
	n, ok := d.scalar(f)
	if !ok {
		return "", false
	}
	if contains(allowed, n.Value) {
		return n.Value, true
	}
	d.errAt(n, f.path, "%q is not %s (%s)", clip(n.Value), what, want(n.Value, allowed))
	return "", false
}

// list decodes a sequence; each element is returned with its path.
func (d *decoder) list(f field, example string) ([]field, bool) {
	n := deref(f.val)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		d.errAt(n, f.path, "expected a list, found %s; write it as %s", describe(n), example)
		return nil, false
	}
	out := make([]field, 0, len(n.Content))
	for i, c := range n.Content {
		out = append(out, field{key: c, val: c, path: index(f.path, i)})
	}
	return out, true
}

// strList decodes a list of non-empty strings, reporting duplicates. It
// returns the kept strings with their fields (for positions and paths).
func (d *decoder) strList(f field, example string) ([]string, []field, bool) {
	items, ok := d.list(f, example)
	if !ok {
		return nil, nil, false
	}
	var out []string
	var kept []field
	seen := map[string]int{}
	good := true
	for _, it := range items {
		s, ok := d.nonEmpty(it, "a value or remove the entry")
		if !ok {
			good = false
			continue
		}
		if j, dup := seen[s]; dup {
			d.errAt(deref(it.val), it.path, "%q is listed twice (also at %s)", clip(s), also(deref(kept[j].val), deref(it.val)))
			good = false
			continue
		}
		seen[s] = len(out)
		out = append(out, s)
		kept = append(kept, it)
	}
	return out, kept, good
}

// also names where prev is, seen from cur: "line 9" or "column 12".
func also(prev, cur *yaml.Node) string {
	if prev == nil {
		return "another entry"
	}
	if cur != nil && prev.Line == cur.Line {
		return fmt.Sprintf("column %d", prev.Column)
	}
	return fmt.Sprintf("line %d", prev.Line)
}

// hostPort checks a dial address host:port or, with listen, a listen
// address (host may be empty, port may be 0).
func (d *decoder) hostPort(f field, listen bool, example string) (string, bool) {
	s, ok := d.str(f)
	if !ok {
		return "", false
	}
	if s == "" {
		return "", true
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		d.errAt(deref(f.val), f.path, "%q is not host:port (write it like %s)", clip(s), example)
		return "", false
	}
	if !listen && host == "" {
		d.errAt(deref(f.val), f.path, "%q has no host (write it like %s)", clip(s), example)
		return "", false
	}
	lo := 1
	if listen {
		lo = 0 // port 0: any free port (tests)
	}
	if p, err := strconv.Atoi(port); err != nil || p < lo || p > 65535 {
		d.errAt(deref(f.val), f.path, "%q has a bad port %q (want %d..65535, e.g. %s)", clip(s), port, lo, example)
		return "", false
	}
	return s, true
}
