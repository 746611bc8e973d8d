package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/hardware"
)

// Defaults of a line, in one place.
const (
	DefaultDownAfter  = 3               // failed polls in a row that make a device down
	DefaultMinBackoff = time.Second     // first back-off window of a down device with a shorter interval
	DefaultMaxBackoff = 5 * time.Minute // longest back-off window
	maxGap            = 10 * time.Second
)

// ErrConfig reports a line configuration New refuses.
var ErrConfig = errors.New("bus: bad line config")

// ErrLine reports that the line could not serve a request.
var ErrLine = errors.New("bus: line not available")

// Port is an open serial line the bus can close and reopen.
type Port interface {
	hardware.Port
	io.Closer
}

// Device is one device on the line.
type Device struct {
	ID string
	// Interval between polls; 0 means poll continuously (see the package
	// documentation).
	Interval time.Duration
	// New builds the device's poller on the line's (gap-keeping) port. It
	// is called again after the line is reopened. When the poller is a
	// drivers.FrameGapper, the line keeps its FrameGap before each of its
	// requests.
	New func(p hardware.Port) (drivers.Poller, error)
}

// Emit takes readings and returns nil once they are durably queued.
type Emit func(ctx context.Context, rs []drivers.Reading) error

// Config describes one serial line and its devices. New copies it; the
// caller's value is never changed.
type Config struct {
	Name    string
	Mode    hardware.Mode
	Open    func() (Port, error)
	Devices []Device
	Emit    Emit         // nil: readings are dropped (tests)
	Logger  *slog.Logger // nil: discard
	// DownAfter consecutive failed polls mark a device down (0:
	// DefaultDownAfter).
	DownAfter int
	// MinBackoff is the first back-off window of a down device whose
	// interval is shorter (0: DefaultMinBackoff).
	MinBackoff time.Duration
	// MaxBackoff bounds how rarely a down device is tried (0:
	// DefaultMaxBackoff).
	MaxBackoff time.Duration
	// Gap is the least silence between frames on this line, whatever the
	// device (0 or less than InterFrameGap(Mode): InterFrameGap(Mode)).
	Gap time.Duration
	// Clock is the line's time (nil: SystemClock).
	Clock Clock
	// Jitter returns a random duration in [0, d] that places a down
	// device's try in its back-off window (nil: math/rand/v2).
	Jitter func(d time.Duration) time.Duration
}

// withDefaults returns a copy of c with every zero value filled in.
func (c Config) withDefaults() Config {
	if c.DownAfter == 0 {
		c.DownAfter = DefaultDownAfter
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(DefaultMaxBackoff, c.MinBackoff)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Jitter == nil {
		c.Jitter = func(d time.Duration) time.Duration { return rand.N(d + 1) }
	}
	c.Devices = append([]Device(nil), c.Devices...)
	return c
}

// Validate checks the configuration (zero values take their defaults).
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: line %q: %s", ErrConfig, c.Name, fmt.Sprintf(format, a...))
	}
	switch {
	case c.Name == "":
		return bad("no name")
	case c.Open == nil:
		return bad("no Open function")
	case c.DownAfter < 0:
		return bad("DownAfter %d", c.DownAfter)
	case c.MinBackoff < 0 || c.MaxBackoff < 0:
		return bad("back-off %v..%v", c.MinBackoff, c.MaxBackoff)
	case c.MaxBackoff != 0 && c.MaxBackoff < c.MinBackoff:
		return bad("MaxBackoff %v is less than MinBackoff %v", c.MaxBackoff, c.MinBackoff)
	case c.Gap < 0 || c.Gap > maxGap:
		return bad("gap %v (want 0 to %v)", c.Gap, maxGap)
	}
	if err := c.Mode.Validate(); err != nil {
		return bad("%v", err)
	}
	seen := map[string]bool{}
	for i, d := range c.Devices {
		switch {
		case d.ID == "":
			return bad("device %d has no id", i)
		case seen[d.ID]:
			return bad("device %q listed twice", d.ID)
		case d.New == nil:
			return bad("device %q has no New function", d.ID)
		case d.Interval < 0:
			return bad("device %q: interval %v", d.ID, d.Interval)
		}
		seen[d.ID] = true
	}
	return nil
}
