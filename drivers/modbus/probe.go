package modbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/serialio"
	"github.com/townlink/townlink/hardware"
)

// DefaultProbeDelay is how long a probe allows a unit before it starts to
// answer. Field units answer within tens of milliseconds; the scan sends
// 247 probes per serial setting, so this is short, and a reply that
// arrives later is still credited to its unit (see Scan).
const DefaultProbeDelay = 100 * time.Millisecond

// ErrGarbled: a unit answered, twice, with bytes that are not a valid
// reply (a baud or parity mismatch, or noise).
var ErrGarbled = errors.New("modbus: garbled reply to a probe")

// ProbeOptions tunes Scan.
type ProbeOptions struct {
	// Mode is the line's serial framing, used to allow for wire time.
	Mode hardware.Mode
	// ReplyDelay is what a unit may take to start its reply; 0 means
	// DefaultProbeDelay.
	ReplyDelay time.Duration
	// Units to probe, in order; nil means 1..247.
	Units []byte
	// Progress, if set, is called after every unit with the units done,
	// the total and the units found so far.
	Progress func(done, total, found int)
}

// Present is a unit that answered a probe.
type Present struct {
	Unit byte
	// Exception is the exception code of its reply, 0 for a normal reply.
	// An exception still proves the unit is there.
	Exception byte
}

// ProbeWindow is how long a probe waits at mode: the request's (8 bytes)
// and the reply's (7 bytes) wire time, 3.5 characters of silence, and
// replyDelay.
func ProbeWindow(mode hardware.Mode, replyDelay time.Duration) time.Duration {
	return mode.WireTime(8+7+4) + replyDelay
}

// ProbeRequest is the harmless request a probe sends: read one holding
// register at address 0 (FC 03).
func ProbeRequest(unit byte) []byte {
	return AppendCRC([]byte{unit, FuncReadHoldingRegisters, 0, 0, 0, 1})
}

// ClassifyProbe reads a reply frame (as SplitRTU returns it, CRC checked)
// to a probe: the unit that sent it and its exception code (0 for a
// normal reply), or an error if it is not a reply to a probe.
func ClassifyProbe(frame []byte) (Present, error) {
	if len(frame) < 5 {
		return Present{}, fmt.Errorf("%w: %d bytes", ErrLength, len(frame))
	}
	unit, fc := frame[0], frame[1]
	if unit == 0 || unit > 247 {
		return Present{}, fmt.Errorf("%w: unit %d", ErrWrongUnit, unit)
	}
	switch {
	case fc == FuncReadHoldingRegisters|0x80 && len(frame) == 5:
		return Present{Unit: unit, Exception: frame[2]}, nil
	case fc == FuncReadHoldingRegisters && len(frame) == 7 && frame[2] == 2:
		return Present{Unit: unit}, nil
	}
	return Present{}, fmt.Errorf("%w: % X is not a reply to read 1 holding register", ErrFunction, frame)
}

// Scan probes each unit with ProbeRequest once and returns those that
// answered, normal or exception, in the order they answered. A reply that
// comes late, while the next unit is asked, is credited to the unit it
// names. A garbled reply is asked again once; units that stay garbled are
// named in an error wrapping ErrGarbled, beside the units found. On ctx's
// end Scan returns what it found so far and ctx.Err().
func Scan(ctx context.Context, p hardware.Port, o ProbeOptions) ([]Present, error) {
	units := o.Units
	if units == nil {
		for u := 1; u <= 247; u++ {
			units = append(units, byte(u))
		}
	}
	if o.ReplyDelay <= 0 {
		o.ReplyDelay = DefaultProbeDelay
	}
	window := ProbeWindow(o.Mode, o.ReplyDelay)
	var found []Present
	seen := map[byte]bool{}
	var garbled []byte
	for i, u := range units {
		if err := ctx.Err(); err != nil {
			return found, err
		}
		for attempt := 0; attempt < 2 && !seen[u]; attempt++ {
			got, err := probeOnce(ctx, p, u, window)
			switch {
			case err == nil:
				if !seen[got.Unit] {
					seen[got.Unit] = true
					found = append(found, got)
				}
			case ctx.Err() != nil:
				return found, ctx.Err()
			case errors.Is(err, drivers.ErrTimeout):
				attempt = 2 // silence: not there
			case errors.Is(err, drivers.ErrFrame):
				if attempt == 1 {
					garbled = append(garbled, u)
				}
			default:
				return found, fmt.Errorf("modbus: probe unit %d: %w", u, err)
			}
		}
		if o.Progress != nil {
			o.Progress(i+1, len(units), len(found))
		}
	}
	if len(garbled) > 0 {
		return found, fmt.Errorf("%w: units %v", ErrGarbled, garbled)
	}
	return found, nil
}

func probeOnce(ctx context.Context, p hardware.Port, unit byte, window time.Duration) (Present, error) {
	// No Flush: a late reply to the previous probe still counts.
	if _, err := p.Write(ProbeRequest(unit)); err != nil {
		return Present{}, fmt.Errorf("write: %w", err)
	}
	b, err := serialio.ReadFrame(ctx, p, time.Now().Add(window), SplitRTU)
	if err != nil {
		if errors.Is(err, drivers.ErrTimeout) || errors.Is(err, drivers.ErrFrame) || ctx.Err() != nil {
			return Present{}, err
		}
		return Present{}, fmt.Errorf("read: %w", err)
	}
	got, err := ClassifyProbe(b)
	if err != nil {
		return Present{}, fmt.Errorf("%w: %w", drivers.ErrFrame, err)
	}
	return got, nil
}
