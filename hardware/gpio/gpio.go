package gpio

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// Level is a line's level, periph's gpio.Level (true: high), named here so
// that users of this package need not import periph.io/x/conn/v3/gpio too.
type Level = gpio.Level

// The two levels.
const (
	Low  Level = gpio.Low
	High Level = gpio.High
)

// Edge is one transition of an input line.
type Edge struct {
	// Level is the level the line has after the edge: High for a rising
	// edge, Low for a falling one.
	Level Level
	// Time is when the edge happened, on the line's clock: the simulated
	// time for a gpiosim.Sim, the time the event was read for the Linux backend
	// (see Open).
	Time time.Time
}

// Line is one requested input line with edge detection on both edges: what
// a backend (the Linux character device, hardware/gpiosim) provides. A Line is used by
// one goroutine at a time.
type Line interface {
	// Read returns the current level.
	Read() (Level, error)
	// WaitEdge returns the next edge. It waits until ctx ends or the line's
	// clock reaches deadline (the zero time: no deadline); a passed
	// deadline returns an error that satisfies
	// errors.Is(err, os.ErrDeadlineExceeded) with Edge.Time set to the
	// line's current time and Edge.Level to the current level.
	WaitEdge(ctx context.Context, deadline time.Time) (Edge, error)
	// Now is the current time on the line's clock.
	Now() time.Time
	// Close releases the line.
	Close() error
}

// Errors.
var (
	// ErrClosed: the line (or the Input) was closed.
	ErrClosed = errors.New("gpio: line closed")
	// ErrNoLine: no GPIO line has that name.
	ErrNoLine = errors.New("gpio: no such line")
	// ErrLine: the line failed (the chip went away, a read failed).
	ErrLine = errors.New("gpio: line error")
)

// LineSpec is a GPIO line named by chip and offset, "gpiochip0:17" or
// "/dev/gpiochip0:17".
type LineSpec struct {
	Chip   string // kernel chip name, e.g. "gpiochip0"
	Offset int    // line offset on the chip (not a header pin number)
}

func (s LineSpec) String() string { return fmt.Sprintf("%s:%d", s.Chip, s.Offset) }

// maxOffset bounds a line offset (the kernel's GPIO_MAX_NAME_SIZE-era
// chips have at most a few hundred lines; 65535 is generous).
const maxOffset = 65535

// ParseLineSpec parses "gpiochipN:offset" (optionally "/dev/"-prefixed).
// ok is false when s has another form, which Open treats as a line name;
// err is set when s looks like a chip spec but is malformed.
func ParseLineSpec(s string) (spec LineSpec, ok bool, err error) {
	t := strings.TrimPrefix(s, "/dev/")
	if !strings.HasPrefix(t, "gpiochip") {
		return LineSpec{}, false, nil
	}
	chip, off, found := strings.Cut(t, ":")
	if !found {
		if strings.HasPrefix(s, "/dev/") {
			return LineSpec{}, true, fmt.Errorf("%w: %q names a chip but no line (want e.g. gpiochip0:17)", ErrNoLine, s)
		}
		return LineSpec{}, false, nil // a line name that starts with "gpiochip"
	}
	n := strings.TrimPrefix(chip, "gpiochip")
	if n == "" || len(n) > 4 || strings.Trim(n, "0123456789") != "" {
		return LineSpec{}, true, fmt.Errorf("%w: %q: chip %q is not gpiochipN", ErrNoLine, s, chip)
	}
	if off == "" || len(off) > 5 || strings.Trim(off, "0123456789") != "" {
		return LineSpec{}, true, fmt.Errorf("%w: %q: line offset %q is not a number", ErrNoLine, s, off)
	}
	o, _ := strconv.Atoi(off)
	if o > maxOffset {
		return LineSpec{}, true, fmt.Errorf("%w: %q: line offset %d is over %d", ErrNoLine, s, o, maxOffset)
	}
	return LineSpec{Chip: chip, Offset: o}, true, nil
}
