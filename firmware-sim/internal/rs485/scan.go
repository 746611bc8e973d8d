package rs485

// Candidate is what a protocol makes of the bytes from one frame-start
// byte on (see Resync).
type Candidate int

// Candidates.
const (
	Invalid    Candidate = iota // not a frame: a false start, a bad length, end byte or checksum
	Incomplete                  // may become a frame when more bytes arrive
	Complete                    // a valid frame of the returned length
)

// Resync finds the first complete, valid frame in buf by trying every
// start byte as a frame start: try judges buf from that byte on and, for a
// Complete frame, gives its length. Noise, a false start or a frame with a
// bad checksum costs one byte and the scan resynchronises on the next start
// byte; an incomplete candidate does not hide a complete frame that starts
// after it.
//
// ok: the frame occupies buf[begin:end]. !ok: buf[:keep] is garbage that
// can be dropped; buf[keep:] may still become a frame.
func Resync(buf []byte, start byte, try func(rest []byte) (Candidate, int)) (begin, end, keep int, ok bool) {
	keep = len(buf)
	for i := 0; i < len(buf); i++ {
		if buf[i] != start {
			continue
		}
		switch c, n := try(buf[i:]); c {
		case Incomplete:
			keep = min(keep, i)
		case Complete:
			return i, i + n, 0, true
		}
	}
	return 0, 0, keep, false
}

// Checksum is the 8-bit sum of b, the checksum of DL/T 645 and CJ/T 188.
func Checksum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}
