package modbussim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FaultKind is what a faulty unit does instead of answering normally.
type FaultKind uint8

// Fault kinds.
const (
	KindNone      FaultKind = iota // answer normally
	KindSilent                     // no reply at all; broadcast writes are not applied either
	KindBadCRC                     // the normal reply, with its CRC corrupted
	KindException                  // an exception reply with Fault.Code; writes are not applied
	KindSlow                       // the normal reply, Fault.Delay late
)

// Fault is injected misbehaviour of one unit. The zero value is no fault.
type Fault struct {
	Kind  FaultKind
	Code  byte          // exception code for KindException (1..255)
	Delay time.Duration // extra reply delay for KindSlow
	Count int           // requests the fault lasts for; 0 = until changed
}

// Silent makes a unit never answer, as if unpowered or disconnected.
func Silent() Fault { return Fault{Kind: KindSilent} }

// BadCRC makes a unit answer with a wrong CRC.
func BadCRC() Fault { return Fault{Kind: KindBadCRC} }

// Exception makes a unit answer every request with exception code
// (e.g. 4 server device failure, 6 server busy).
func Exception(code byte) Fault { return Fault{Kind: KindException, Code: code} }

// Slow makes a unit answer d later than normal.
func Slow(d time.Duration) Fault { return Fault{Kind: KindSlow, Delay: d} }

// Times limits f to the next n requests to the unit.
func (f Fault) Times(n int) Fault {
	f.Count = n
	return f
}

// String is the form ParseFault reads.
func (f Fault) String() string {
	var s string
	switch f.Kind {
	case KindNone:
		return "none"
	case KindSilent:
		s = "silent"
	case KindBadCRC:
		s = "badcrc"
	case KindException:
		s = fmt.Sprintf("exception:%d", f.Code)
	case KindSlow:
		s = "slow:" + f.Delay.String()
	default:
		return fmt.Sprintf("FaultKind(%d)", f.Kind)
	}
	if f.Count > 0 {
		s += "*" + strconv.Itoa(f.Count)
	}
	return s
}

// ParseFault reads none, silent, badcrc, exception:CODE (1..255, decimal
// or 0x hex) or slow:DURATION (a Go duration, e.g. 2s), optionally followed
// by *N to last only N requests: "silent*3".
func ParseFault(s string) (Fault, error) {
	spec, count, hasCount := strings.Cut(strings.TrimSpace(s), "*")
	var f Fault
	name, arg, hasArg := strings.Cut(spec, ":")
	switch strings.ToLower(name) {
	case "none", "ok":
		f.Kind = KindNone
	case "silent":
		f.Kind = KindSilent
	case "badcrc", "bad-crc", "crc":
		f.Kind = KindBadCRC
	case "exception", "exc":
		if !hasArg {
			return Fault{}, fmt.Errorf("%w %q: exception needs a code, e.g. exception:4", ErrFault, s)
		}
		c, err := strconv.ParseUint(arg, 0, 8)
		if err != nil || c == 0 {
			return Fault{}, fmt.Errorf("%w %q: exception code %q (want 1..255)", ErrFault, s, arg)
		}
		f = Exception(byte(c))
	case "slow":
		if !hasArg {
			return Fault{}, fmt.Errorf("%w %q: slow needs a delay, e.g. slow:2s", ErrFault, s)
		}
		d, err := time.ParseDuration(arg)
		if err != nil || d <= 0 || d > time.Hour {
			return Fault{}, fmt.Errorf("%w %q: delay %q (want a duration like 800ms, up to 1h)", ErrFault, s, arg)
		}
		f = Slow(d)
	default:
		return Fault{}, fmt.Errorf("%w %q (want none, silent, badcrc, exception:CODE or slow:DURATION, optionally *N)", ErrFault, s)
	}
	if hasArg && f.Kind != KindException && f.Kind != KindSlow {
		return Fault{}, fmt.Errorf("%w %q: %s takes no argument", ErrFault, s, name)
	}
	if hasCount {
		n, err := strconv.Atoi(count)
		if err != nil || n <= 0 || f.Kind == KindNone {
			return Fault{}, fmt.Errorf("%w %q: count %q (want a positive number after a fault)", ErrFault, s, count)
		}
		f.Count = n
	}
	return f, nil
}
