package fieldbroker

import (
	"errors"
	"fmt"
	"io"
)

// Reasons a connection is closed before mochi sees it (Stats.PreAuthDropped).
var (
	errTooManyPending  = errors.New("fieldbroker: too many connections waiting to log in (from this address or in total)")
	errNotConnect      = errors.New("fieldbroker: first packet is not a CONNECT")
	errConnectTooLarge = errors.New("fieldbroker: CONNECT larger than the limit before login")
	errBadLength       = errors.New("fieldbroker: malformed remaining length")
	errDecodePanic     = errors.New("fieldbroker: mochi panicked reading a packet")
)

// connectType is the first byte of every valid CONNECT (type 1, flags 0;
// MQTT 3.1.1 §3.1.1, MQTT 5 §3.1.1).
const connectType = 0x10

// readConnect reads one CONNECT packet — fixed header and body — and
// returns its bytes. It reads the remaining length byte by byte and refuses
// a packet announcing more than max bytes before allocating anything for
// it, so a CONNECT costs at most max bytes until its password is checked.
func readConnect(r io.Reader, max int) ([]byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:1]); err != nil {
		return nil, fmt.Errorf("fieldbroker: read fixed header: %w", err)
	}
	if hdr[0] != connectType {
		return nil, fmt.Errorf("%w: first byte 0x%02x, want 0x%02x", errNotConnect, hdr[0], connectType)
	}
	n, mult, end := 0, 1, 0
	for i := 1; end == 0; i++ {
		if i == len(hdr) {
			return nil, fmt.Errorf("%w: more than 4 length bytes", errBadLength)
		}
		if _, err := io.ReadFull(r, hdr[i:i+1]); err != nil {
			return nil, fmt.Errorf("fieldbroker: read remaining length: %w", err)
		}
		n += int(hdr[i]&0x7f) * mult
		mult *= 128
		if hdr[i]&0x80 == 0 {
			end = i + 1
		}
	}
	if n > max {
		return nil, fmt.Errorf("%w: %d bytes announced, at most %d", errConnectTooLarge, n, max)
	}
	buf := make([]byte, end+n)
	copy(buf, hdr[:end])
	if _, err := io.ReadFull(r, buf[end:]); err != nil {
		return nil, fmt.Errorf("fieldbroker: read CONNECT body of %d bytes: %w", n, err)
	}
	return buf, nil
}
