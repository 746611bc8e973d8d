// Package drivers defines what every device driver produces and implements:
// Reading, Value (exact decimals for meter registers), Poller and Source.
// It imports only the standard library.
package drivers

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Class says which uplink stream a reading belongs to.
type Class uint8

// Classes, in the contract's stream names.
const (
	Telemetry Class = iota // periodic readings
	Event                  // state changes
	Alarm                  // early warnings, SOS, tamper
	Evidence               // enforcement-recorder evidence metadata
)

func (c Class) String() string {
	switch c {
	case Telemetry:
		return "telemetry"
	case Event:
		return "events"
	case Alarm:
		return "alarms"
	case Evidence:
		return "evidence"
	}
	return "unknown"
}

// Reading is one observation of one device: a set of named points taken at
// one time. Point names carry their unit (energy_kwh, temp_c).
type Reading struct {
	Device string
	Class  Class
	// Time is when the value was measured. The zero time means "now": the
	// gateway stamps it on arrival.
	Time time.Time
	// DeviceTime is true when Time came from the device's own clock.
	DeviceTime bool
	Values     map[string]Value
	// Quality flags; 0 is good. See the Quality constants.
	Quality uint32
}

// Quality flags a driver sets on a Reading. Bit 0 is reserved for the
// gateway's pipeline (a point left out because it has no wire form).
const (
	// QualityInvalidFields: optional fields of the message were invalid;
	// they are left out and named in the reading's "invalid" point instead
	// of refusing the whole message (an SOS, a kiosk wait that the clocks
	// made negative).
	QualityInvalidFields uint32 = 1 << 1
	// QualityClockSkew: the device's clock disagrees with the gateway's.
	// The reading keeps the device's time and carries the point
	// clock_offset_ms (Int, device minus gateway, in milliseconds). The
	// driver's package doc says when a difference counts as skew.
	QualityClockSkew uint32 = 1 << 2
)

// Poller is a device that answers when asked.
type Poller interface {
	// Poll reads the device and appends its readings to dst. It may return
	// readings AND an error (some points read, others failed).
	Poll(ctx context.Context, dst []Reading) ([]Reading, error)
}

// Source is a device that speaks when it wants.
type Source interface {
	// Run emits readings until ctx ends. emit returns nil once the reading
	// is durably queued; an error from emit means it was not kept.
	Run(ctx context.Context, emit func(Reading) error) error
}

// Errors shared by drivers.
var (
	// ErrTimeout: the device did not answer in time.
	ErrTimeout = errors.New("drivers: device did not answer")
	// ErrFrame: a reply could not be parsed (checksum, length, framing).
	ErrFrame = errors.New("drivers: bad frame")
	// ErrConfig: a driver configuration is invalid.
	ErrConfig = errors.New("drivers: bad config")
)

// Retries is the one meaning of "retries" everywhere in townlink: in every
// driver's Config, in NewRTU/NewTCP and in the config file's `retries:`
// key. It is how many more times a request is sent after a try that got no
// good reply (a timeout, a garbled frame or a reply that does not answer
// the request; a device's own refusal, such as a Modbus exception, is not
// retried). 0 means none: the request is sent once. A negative count is a
// configuration error, never "default". The default count is the driver's
// DefaultRetries constant, applied by whoever builds the driver's config
// when the user gave none (gateway/config does it for the config file).
//
// CheckRetries is the check every driver applies.
func CheckRetries(n int) error {
	if n < 0 || n > MaxRetries {
		return fmt.Errorf("%w: %d retries (want 0, meaning none, to %d)", ErrConfig, n, MaxRetries)
	}
	return nil
}

// MaxRetries bounds Retries: more would let one device hold a line for
// minutes.
const MaxRetries = 10

// FrameGapper is implemented by a serial driver's device that needs more
// silence on the line before each of its requests than the 3.5 characters
// every serial line needs. The driver declares it; the line's owner keeps
// it (gateway/bus), before every request, whoever sent the last frame. The
// driver itself never sleeps between requests.
type FrameGapper interface {
	FrameGap() time.Duration
}
