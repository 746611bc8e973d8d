package gpio

// This file is the whole Linux backend and the only code in the module that
// imports periph.io/x/host/v3. Everything above it (Input, pulse debounce,
// counting) is tested through Line with hardware/gpiosim's Sim; this file
// needs a real GPIO chip and is not covered by the tests.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/host/v3"
	"periph.io/x/host/v3/gpioioctl"
)

// waitSlice bounds one blocking wait in the kernel, so ctx is noticed.
const waitSlice = 200 * time.Millisecond

// Open requests the GPIO line called name (a line name as gpioinfo shows
// it, or "gpiochipN:offset") as an input with edge detection on both
// edges, through the Linux GPIO character device (periph.io/x/host/v3
// gpioioctl, uAPI v2). The bias is left as it is (PullNoChange).
//
// Edge.Time is taken when the event is read: periph drops the kernel's
// timestamp. Use it through an Input, which requests the line again after
// an error.
//
// Open opens real lines only: a simulated line is hardware/gpiosim's
// (gpiosim.Dial for one served by townsim), chosen by the caller's wiring.
func Open(name string) (Line, error) {
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("%w: %s: periph host init: %w", ErrLine, name, err)
	}
	if len(gpioioctl.Chips) == 0 {
		return nil, fmt.Errorf("%w: %q: this machine has no GPIO chip (/dev/gpiochip*)", ErrNoLine, name)
	}
	chip, lineName, err := findLine(name)
	if err != nil {
		return nil, err
	}
	ls, err := chip.LineSet(gpioioctl.LineInput, gpio.BothEdges, gpio.PullNoChange, lineName)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: request on %s: %w", ErrLine, name, chip.Name(), err)
	}
	return &chardev{name: name, ls: ls}, nil
}

func findLine(name string) (*gpioioctl.GPIOChip, string, error) {
	spec, isSpec, err := ParseLineSpec(name)
	if err != nil {
		return nil, "", err
	}
	var names []string
	for _, c := range gpioioctl.Chips {
		names = append(names, c.Name())
		if isSpec {
			if c.Name() != spec.Chip {
				continue
			}
			if spec.Offset >= c.LineCount() {
				return nil, "", fmt.Errorf("%w: %s: %s has %d lines", ErrNoLine, name, c.Name(), c.LineCount())
			}
			l := c.ByNumber(spec.Offset)
			if l == nil || l.Name() == "" {
				return nil, "", fmt.Errorf("%w: %s: the kernel gives the line no name, and periph requests lines by name", ErrNoLine, name)
			}
			return c, l.Name(), nil
		}
		if c.ByName(name) != nil {
			return c, name, nil
		}
	}
	return nil, "", fmt.Errorf("%w: %q (chips: %s)", ErrNoLine, name, strings.Join(names, ", "))
}

// chardev is one requested line.
type chardev struct {
	name string
	ls   *gpioioctl.LineSet
}

func (c *chardev) Read() (gpio.Level, error) {
	v, err := c.ls.Read(0)
	if err != nil {
		return gpio.Low, fmt.Errorf("%w: %s: read: %w", ErrLine, c.name, err)
	}
	return v&1 != 0, nil
}

func (c *chardev) Now() time.Time { return time.Now() }

func (c *chardev) Close() error { return c.ls.Close() }

func (c *chardev) WaitEdge(ctx context.Context, deadline time.Time) (Edge, error) {
	for {
		if err := ctx.Err(); err != nil {
			return Edge{}, err
		}
		wait := waitSlice
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				lvl, err := c.Read()
				if err != nil {
					return Edge{}, err
				}
				return Edge{Level: lvl, Time: time.Now()}, fmt.Errorf("gpio: %s: no edge by deadline: %w", c.name, os.ErrDeadlineExceeded)
			}
			wait = min(wait, left)
		}
		_, edge, err := c.ls.WaitForEdge(wait)
		now := time.Now()
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			continue
		case err != nil:
			return Edge{}, fmt.Errorf("%w: %s: wait for edge: %w", ErrLine, c.name, err)
		case edge == gpio.RisingEdge:
			return Edge{Level: gpio.High, Time: now}, nil
		case edge == gpio.FallingEdge:
			return Edge{Level: gpio.Low, Time: now}, nil
		}
		return Edge{}, fmt.Errorf("%w: %s: event with unknown edge %v", ErrLine, c.name, edge)
	}
}
