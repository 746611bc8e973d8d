package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// maxFileSize bounds a config file.
const maxFileSize = 16 << 20

// Load reads and parses the config file at path. Problems in the file are
// Errors naming path:line:col; a file that cannot be read is an *os.PathError
// wrapped with "config: ".
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and validates a config; file names it in errors. On any
// problem it returns a nil Config and Errors (sorted by position, at most
// about 20).
func Parse(file string, data []byte) (*Config, error) {
	d := &decoder{file: file}
	root := d.parseYAML(data)
	if root == nil {
		return nil, d.errs.finish()
	}
	c, p := d.decodeConfig(root)
	d.checkRefs(c, p)
	d.resolveLabels(c, p)
	c.applyDefaults()
	d.checkDefaulted(c, p)
	d.checkRules(c, p)
	if len(d.errs) > 0 {
		return nil, d.errs.finish()
	}
	return c, nil
}

// parseYAML returns the root node, or nil after recording why not.
func (d *decoder) parseYAML(data []byte) *yaml.Node {
	if len(data) > maxFileSize {
		d.errAt(nil, "", "the file is %d bytes; a config file is at most %d MiB", len(data), maxFileSize>>20)
		return nil
	}
	if len(bytes.TrimSpace(data)) == 0 {
		d.errAt(nil, "", "the file is empty; a config needs at least the gateway: and uplink: sections")
		return nil
	}
	if line, col, msg := badBytes(data); msg != "" {
		d.errs = append(d.errs, &Error{File: d.file, Line: line, Col: col, Msg: msg})
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := d.yamlErr(dec.Decode(&doc), data); err != nil {
		if errors.Is(err, io.EOF) {
			d.errAt(nil, "", "the file has no content (only comments?); a config needs at least the gateway: and uplink: sections")
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.yamlErr(err, data)
		return nil
	default:
		d.errs = append(d.errs, &Error{File: d.file, Line: max(next.Line, 1), Col: max(next.Column, 1),
			Msg: "a second YAML document (after ---); a config file holds one document"})
		return nil
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0]
	}
	d.errAt(nil, "", "the file holds no YAML document")
	return nil
}

// yamlErr turns a yaml.v3 parse error into an Error with line, column
// and a hint. It returns err (io.EOF untouched).
//
// yaml.v3 reports only a line, and for parser errors it is the 0-based line
// where the enclosing construct began, or nothing at all. So the problem line
// is found by parsing growing prefixes of the file from there on: the first
// prefix that fails ends at the problem.
func (d *decoder) yamlErr(err error, data []byte) error {
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	reported, msg := splitYAMLErr(err)
	lines := bytes.SplitAfter(data, []byte("\n"))
	start := min(max(reported, 1), len(lines))
	line := problemLine(lines, start, msg)
	// A tab in the indentation is the usual cause; point at it.
	for i := start; i <= line; i++ {
		l := lines[i-1]
		if ws := len(l) - len(bytes.TrimLeft(l, " \t")); ws > 0 && bytes.IndexByte(l[:ws], '\t') >= 0 && len(bytes.TrimSpace(l)) > 0 {
			d.errs = append(d.errs, &Error{File: d.file, Line: i, Col: utf8.RuneCount(l[:bytes.IndexByte(l, '\t')]) + 1,
				Msg: "tab character in the indentation; YAML indents with spaces only (replace the tab with spaces)"})
			return err
		}
	}
	// So is a full-width colon or space from a Chinese input method (a
	// line with one may end the construct before the reported line).
	for i := max(start-1, 1); i <= line; i++ {
		l := lines[i-1]
		if c, r := fullWidthSyntax(l); c > 0 {
			d.errs = append(d.errs, &Error{File: d.file, Line: i, Col: c,
				Msg: fmt.Sprintf("full-width %s; YAML needs the half-width one (switch the input method to half-width/English mode and type it again)", runeName(r))})
			return err
		}
	}
	l := lines[line-1]
	col := len(l) - len(bytes.TrimLeft(l, " ")) + 1
	q := unclosedQuote(l)
	switch {
	case q >= 0 && !strings.HasPrefix(msg, "unknown anchor"):
		col = utf8.RuneCount(l[:q]) + 1
		msg += fmt.Sprintf(" (the %c here is not closed on this line)", l[q])
	case strings.Contains(msg, "mapping values are not allowed"):
		if _, after, ok := bytes.Cut(l, []byte(": ")); ok {
			if i := bytes.Index(after, []byte(": ")); i >= 0 {
				col = utf8.RuneCount(l[:len(l)-len(after)+i]) + 1
			}
		}
		msg += " (quote a value that contains \": \", or check the indentation)"
	case strings.Contains(msg, "did not find expected key"), strings.Contains(msg, "did not find expected '-'"):
		msg += " (check the indentation of this line and the lines around it)"
	case strings.Contains(msg, "did not find expected ','"):
		msg += " (a [list] or {mapping} that is not closed?)"
	case strings.Contains(msg, "could not find expected ':'"):
		msg += " (each line of a mapping is key: value)"
	case strings.Contains(msg, "found character that cannot start any token"):
		msg += " (quote values that start with @ or `)"
	case strings.Contains(msg, "unexpected end of stream"):
		msg += " (a quoted value or a [list] that is not closed?)"
	case strings.HasPrefix(msg, "unknown anchor '"):
		name := strings.TrimSuffix(strings.TrimPrefix(msg, "unknown anchor '"), "' referenced")
		if i := bytes.Index(l, []byte("*"+name)); i >= 0 {
			col = utf8.RuneCount(l[:i]) + 1
		}
		msg = fmt.Sprintf("*%s refers to no anchor (define it first with &%s)", name, name)
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Col: col, Msg: "YAML syntax error: " + msg})
	return err
}

// fullWidthSyntax finds a full-width colon before the line's first
// ": " (where the key ends) or a full-width space in its indentation, and
// returns its column (0: none).
func fullWidthSyntax(l []byte) (int, rune) {
	s := string(l)
	if t := strings.TrimLeft(s, " \u3000"); strings.Contains(s[:len(s)-len(t)], "\u3000") {
		return utf8.RuneCountInString(s[:strings.Index(s, "\u3000")]) + 1, '\u3000'
	}
	key := s
	if i := strings.Index(s, ": "); i >= 0 {
		key = s[:i]
	}
	if i := strings.IndexRune(key, '\uFF1A'); i >= 0 && !strings.HasPrefix(strings.TrimSpace(s), "#") {
		return utf8.RuneCountInString(s[:i]) + 1, '\uFF1A'
	}
	return 0, 0
}

// problemLine returns the first line k >= start such that lines[:k] is not
// valid YAML and fails the same way as the whole file (want is its message),
// or start if none is found within a bounded effort. A binary search finds
// it unless a multi-line [list] or "string" makes validity non-monotonic;
// then a bounded linear scan does.
func problemLine(lines [][]byte, start int, want string) int {
	prefix := func(k int) string { return yamlProblem(bytes.Join(lines[:k], nil)) }
	lo, hi := start, len(lines) // the whole file (hi) fails
	for lo < hi {
		mid := lo + (hi-lo)/2
		if prefix(mid) != "" {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if prefix(hi) == want {
		return hi
	}
	budget := 16 << 20 // bytes parsed at most
	size := 0
	for _, l := range lines[:start-1] {
		size += len(l)
	}
	for k := start; k <= len(lines) && k < start+500; k++ {
		size += len(lines[k-1])
		if budget -= size; budget < 0 {
			break
		}
		if prefix(k) != "" {
			return k
		}
	}
	return start
}

// yamlProblem parses every document of data and returns the first error
// message without its "yaml: line N: " prefix, or "" if data is valid.
func yamlProblem(data []byte) string {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return ""
		}
		if err != nil {
			_, msg := splitYAMLErr(err)
			return msg
		}
	}
}

// splitYAMLErr splits "yaml: line 3: msg" into 3 and "msg" (0 if no line).
func splitYAMLErr(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ": "); ok {
			if n, e := strconv.Atoi(num); e == nil {
				return n, after
			}
		}
	}
	return 0, msg
}

// unclosedQuote returns the offset of a quote that the line opens but does
// not close (outside comments), or -1.
func unclosedQuote(l []byte) int {
	open := -1
	var q byte
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case open >= 0 && c == '\\' && q == '"':
			i++
		case open >= 0 && c == q:
			if q == '\'' && i+1 < len(l) && l[i+1] == '\'' {
				i++ // '' inside single quotes
				continue
			}
			open = -1
		case open < 0 && (c == '"' || c == '\''):
			// A quote starts a scalar only after a blank, [, {, or ,.
			if i == 0 || bytes.IndexByte([]byte(" \t[{,:-"), l[i-1]) >= 0 {
				open, q = i, c
			}
		case open < 0 && c == '#' && (i == 0 || l[i-1] == ' '):
			return -1
		}
	}
	return open
}

// badBytes finds invalid UTF-8 or control characters, which YAML rejects
// without a position.
func badBytes(data []byte) (line, col int, msg string) {
	line, col = 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return line, col, fmt.Sprintf("invalid UTF-8 byte 0x%02x (save the file as UTF-8)", data[i])
		case r == '\n':
			line, col = line+1, 0
		case r == '\t' || r == '\r' || r == 0xFEFF:
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return line, col, fmt.Sprintf("control character %U is not allowed in YAML (remove it)", r)
		case r == 0xFFFE || r == 0xFFFF:
			return line, col, fmt.Sprintf("character %U is not allowed in YAML (remove it)", r)
		}
		i += size
		col++
	}
	return 0, 0, ""
}
