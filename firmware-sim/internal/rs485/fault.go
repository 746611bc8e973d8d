package rs485

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Fault is a misbehaviour injected into a meter's replies, in the
// representation every simulator shares: the low 8 bits are the kind, the
// rest a parameter (Slow's delay, Garbage's rate). The protocol packages
// keep their own exported Fault type over the same bits; kinds from
// FirstCustom up are theirs to define.
type Fault uint64

// Fault kinds every simulated meter has.
const (
	None         Fault = iota // behave
	Silent                    // never reply
	BadChecksum               // reply with CS + 1
	NoiseBefore               // 1-8 random bytes (never the frame start) before the reply's preamble
	WrongAddress              // reply carrying another address (A0 with its low bit flipped)
	CutOff                    // only the first half of the frame (after the preamble): no CS, no end byte
	KindSlow                  // Slow: the parameter is the delay
	KindGarbage               // Garbage: the parameter is the rate in parts per million

	// FirstCustom is the first kind a protocol package may define for
	// itself (cjt188.OldSER); the shared code treats such a fault as None.
	FirstCustom Fault = 16
)

const kindBits = 8

// Slow delays every reply by d on top of the turnaround.
func Slow(d time.Duration) Fault {
	return KindSlow | Fault(max(d, 0))<<kindBits
}

// Garbage garbles a fraction p (0..1) of the replies: 1-3 bytes after the
// preamble get random bits flipped, so the checksum no longer holds.
func Garbage(p float64) Fault {
	ppm := uint64(min(max(p, 0), 1) * 1e6)
	return KindGarbage | Fault(ppm)<<kindBits
}

// Kind is f without its parameter.
func (f Fault) Kind() Fault { return f & (1<<kindBits - 1) }

// Delay is a Slow fault's delay (0 for any other).
func (f Fault) Delay() time.Duration {
	if f.Kind() != KindSlow {
		return 0
	}
	return time.Duration(f >> kindBits)
}

// GarblePPM is the chance (parts per million) that a reply is garbled.
func (f Fault) GarblePPM() uint64 {
	if f.Kind() != KindGarbage {
		return 0
	}
	return uint64(f >> kindBits)
}

func (f Fault) String() string {
	switch f.Kind() {
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
	case KindSlow:
		return fmt.Sprintf("slow(%s)", f.Delay())
	case KindGarbage:
		return fmt.Sprintf("garbage(%g)", float64(f.GarblePPM())/1e6)
	}
	return fmt.Sprintf("Fault(%d)", uint64(f))
}

// Apply builds a reply and applies f to it. encode returns the reply's
// wire bytes with preamble FE bytes in front, ending in its checksum and
// one end byte, with A0's low bit flipped when wrongAddress is set.
// Randomness comes from rng; noise never contains start (the frame start
// byte, so that it cannot pass for one). faulted reports a reply changed,
// delayed or suppressed (nil b) by the fault. A custom kind (FirstCustom
// and up) leaves the reply as it is.
func (f Fault) Apply(encode func(wrongAddress bool) []byte, preamble int, start byte, rng *rand.Rand) (b []byte, delay time.Duration, faulted bool) {
	switch f.Kind() {
	case Silent:
		return nil, 0, true
	case WrongAddress:
		return encode(true), 0, true
	}
	b = encode(false)
	switch f.Kind() {
	case BadChecksum:
		b[len(b)-2]++
	case CutOff:
		b = b[:preamble+(len(b)-preamble)/2]
	case NoiseBefore:
		noise := make([]byte, 1+rng.IntN(8))
		for i := range noise {
			for noise[i] = byte(rng.Uint32()); noise[i] == start; noise[i] = byte(rng.Uint32()) {
			}
		}
		b = append(noise, b...)
	case KindSlow:
		return b, f.Delay(), true
	case KindGarbage:
		if rng.Uint64N(1e6) >= f.GarblePPM() {
			return b, 0, false
		}
		for range 1 + rng.IntN(3) {
			b[preamble+rng.IntN(len(b)-preamble)] ^= byte(1 + rng.IntN(255))
		}
	default: // None and custom kinds
		return b, 0, false
	}
	return b, 0, true
}
