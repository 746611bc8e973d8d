// Package board maps the labels printed on a gateway's case (RS485-1,
// DI3) to what the software opens: a serial device path or a GPIO line.
// Profiles are data (profiles.go); the gateway's config names a board and
// its devices name labels, or device paths directly.
//
// Labels are matched case-insensitively, with '_' or ' ' taken as '-'
// (rs485_1 is RS485-1). A value that already names a device passes
// through unchanged: for Serial any path (it contains '/'), for GPIO a
// "/dev/…" path, a "gpiochipN:offset" line, a simulated line ("sim:/…" or
// "unix:/…", served by townsim), or a line name the profile itself maps to.
package board

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Errors.
var (
	// ErrUnknownBoard: no profile has that name.
	ErrUnknownBoard = errors.New("board: unknown board")
	// ErrNoLabel: the board has no port or input with that label.
	ErrNoLabel = errors.New("board: no such label")
	// ErrLabel: the text is not a label.
	ErrLabel = errors.New("board: bad label")
)

// Entry is one label on a board.
type Entry struct {
	Label string // canonical, e.g. RS485-1, DI3
	Value string // device path or GPIO line name / gpiochipN:offset
	// Unsure marks a mapping taken from a typical layout, not verified on
	// the hardware.
	Unsure bool
}

// Profile is one board's labels.
type Profile struct {
	Name        string
	Description string
	Source      string // where the mapping comes from
	serial      []Entry
	gpio        []Entry
}

// Serials returns the board's serial ports in label order.
func (p *Profile) Serials() []Entry { return slices.Clone(p.serial) }

// Inputs returns the board's GPIO inputs in label order.
func (p *Profile) Inputs() []Entry { return slices.Clone(p.gpio) }

// Names lists the known boards, sorted.
func Names() []string {
	var n []string
	for _, p := range profiles() {
		n = append(n, p.Name)
	}
	slices.Sort(n)
	return n
}

// Lookup returns the profile called name.
func Lookup(name string) (*Profile, error) {
	for _, p := range profiles() {
		if p.Name == name {
			return &p, nil
		}
	}
	return nil, fmt.Errorf("%w: %q (known: %s)", ErrUnknownBoard, name, strings.Join(Names(), ", "))
}

// maxLabel bounds a label's length.
const maxLabel = 16

// ParseLabel returns the canonical form of a label: upper case, '_' and
// ' ' as '-', then letters, digits and single inner '-' only, starting
// with a letter, at most 16 characters ("rs485_1" → "RS485-1").
func ParseLabel(s string) (string, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.Map(func(r rune) rune {
		if r == '_' || r == ' ' {
			return '-'
		}
		return r
	}, t)
	switch {
	case t == "":
		return "", fmt.Errorf("%w: empty", ErrLabel)
	case len(t) > maxLabel:
		return "", fmt.Errorf("%w: %q is longer than %d characters", ErrLabel, s, maxLabel)
	case t[0] < 'A' || t[0] > 'Z':
		return "", fmt.Errorf("%w: %q does not start with a letter", ErrLabel, s)
	case strings.HasSuffix(t, "-") || strings.Contains(t, "--"):
		return "", fmt.Errorf("%w: %q has a dangling '-'", ErrLabel, s)
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return "", fmt.Errorf("%w: %q: character %q (want letters, digits, '-')", ErrLabel, s, c)
		}
	}
	return t, nil
}

// Serial resolves a serial port label (or passes a path through).
func (p *Profile) Serial(label string) (path string, err error) {
	if strings.Contains(label, "/") {
		return label, nil
	}
	return p.resolve(label, p.serial, "serial port")
}

// GPIO resolves a GPIO input label to a line name or gpiochipN:offset (or
// passes a line through).
func (p *Profile) GPIO(label string) (line string, err error) {
	if isLine(label) {
		return label, nil
	}
	for _, e := range p.gpio {
		if e.Value == label {
			return label, nil
		}
	}
	return p.resolve(label, p.gpio, "GPIO input")
}

// isLine reports whether s already names a GPIO line: /dev/…,
// gpiochipN:offset, or a simulated line served on a socket (sim:/… or
// unix:/…, hardware/gpiosim.Dial).
func isLine(s string) bool {
	if strings.HasPrefix(s, "/dev/") || strings.HasPrefix(s, "sim:") || strings.HasPrefix(s, "unix:") {
		return true
	}
	chip, off, ok := strings.Cut(s, ":")
	n, isChip := strings.CutPrefix(chip, "gpiochip")
	return ok && isChip && digits(n) && digits(off)
}

func digits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

func (p *Profile) resolve(label string, entries []Entry, what string) (string, error) {
	canon, err := ParseLabel(label)
	if err != nil {
		return "", fmt.Errorf("board %s: %s %w", p.Name, what, err)
	}
	for _, e := range entries {
		if e.Label == canon {
			return e.Value, nil
		}
	}
	var have []string
	for _, e := range entries {
		have = append(have, e.Label)
	}
	return "", fmt.Errorf("%w: board %s has no %s %q (it has %s)", ErrNoLabel, p.Name, what, label, strings.Join(have, ", "))
}
