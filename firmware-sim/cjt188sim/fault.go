package cjt188sim

import (
	"time"

	"github.com/townlink/townlink/firmware-sim/internal/rs485"
)

// Fault is a misbehaviour injected into a meter's replies. The plain ones
// are constants; Slow and Garbage carry a parameter. A meter with a fault
// still listens: a valve command is carried out even when Silent.
type Fault uint64

// Faults.
const (
	None         = Fault(rs485.None)         // behave
	Silent       = Fault(rs485.Silent)       // never reply
	BadChecksum  = Fault(rs485.BadChecksum)  // reply with CS + 1
	NoiseBefore  = Fault(rs485.NoiseBefore)  // 1-8 random bytes (never 0x68) before the reply's preamble
	WrongAddress = Fault(rs485.WrongAddress) // reply carrying another address (A0 with its low bit flipped)
	CutOff       = Fault(rs485.CutOff)       // only the first half of the frame (after the preamble): no CS, no 16
	OldSER       = Fault(rs485.FirstCustom)  // reply echoing the SER of the previous request instead of this one
)

// Slow delays every reply by d on top of the turnaround.
func Slow(d time.Duration) Fault { return Fault(rs485.Slow(d)) }

// Garbage garbles a fraction p (0..1) of the replies: 1-3 bytes after the
// preamble get random bits flipped, so the checksum no longer holds.
func Garbage(p float64) Fault { return Fault(rs485.Garbage(p)) }

func (f Fault) String() string {
	if f == OldSER {
		return "old-ser"
	}
	return rs485.Fault(f).String()
}
