package dlt645

import (
	"fmt"
	"time"
)

// Fault is a misbehaviour injected into a meter's replies. The plain ones
// are constants; Slow and Garbage carry a parameter. A meter with a fault
// still listens: a broadcast time sync is applied even when Silent.
type Fault uint64

// Faults.
const (
	None         Fault = iota // behave
	Silent                    // never reply
	BadChecksum               // reply with CS + 1
	NoiseBefore               // 1-8 random bytes (never 0x68) before the reply's preamble
	WrongAddress              // reply carrying another address (A0 with its low bit flipped)
	CutOff                    // only the first half of the frame (after the preamble): no CS, no 16
	faultSlow
	faultGarbage
)

const faultKindBits = 8

// Slow delays every reply by d on top of the turnaround.
func Slow(d time.Duration) Fault {
	return faultSlow | Fault(max(d, 0))<<faultKindBits
}

// Garbage garbles a fraction p (0..1) of the replies: 1-3 bytes after the
// preamble get random bits flipped, so the checksum no longer holds.
func Garbage(p float64) Fault {
	ppm := uint64(min(max(p, 0), 1) * 1e6)
	return faultGarbage | Fault(ppm)<<faultKindBits
}

func (f Fault) kind() Fault { return f & (1<<faultKindBits - 1) }

func (f Fault) delay() time.Duration {
	if f.kind() != faultSlow {
		return 0
	}
	return time.Duration(f >> faultKindBits)
}

// garblePPM is the chance (parts per million) that a reply is garbled.
func (f Fault) garblePPM() uint64 {
	if f.kind() != faultGarbage {
		return 0
	}
	return uint64(f >> faultKindBits)
}

func (f Fault) String() string {
	switch f.kind() {
	case None:
		return "none"
	case Silent:
		return "silent"
	case BadChecksum:
		return "bad-checksum"
	case NoiseBefore:
		return "noise-before"
	case WrongAddress:
		return "wrong-address"
	case CutOff:
		return "cut-off"
	case faultSlow:
		return fmt.Sprintf("slow(%s)", f.delay())
	case faultGarbage:
		return fmt.Sprintf("garbage(%g)", float64(f.garblePPM())/1e6)
	}
	return fmt.Sprintf("Fault(%d)", uint64(f))
}
