package dlt645

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/townlink/townlink/drivers/internal/addrsearch"
	"github.com/townlink/townlink/hardware"
)

// DefaultReplyDelay is how long a search probe allows a meter before it
// starts to answer: the standard's upper bound Td ≤ 500 ms (protocols.md
// §1.4).
const DefaultReplyDelay = 500 * time.Millisecond

// ErrGarbled: a meter whose replies stay garbled even at its full address
// (a broken transmitter or a noisy line); it is not counted as found.
var ErrGarbled = errors.New("dlt645: garbled reply at a full address")

// SearchOptions tunes Search.
type SearchOptions struct {
	Version Version
	// Mode is the line's serial framing, used to allow for wire time.
	Mode hardware.Mode
	// ReplyDelay is the time a meter may take to start its reply; 0 means
	// DefaultReplyDelay.
	ReplyDelay time.Duration
	// Preamble is the number of FE bytes before a request; 0 means
	// DefaultPreamble, negative none.
	Preamble int
	// Progress, if set, is called after every probe with the probes done,
	// an estimate of those left and the meters found so far.
	Progress func(done, left, found int)
}

// ProbeWindow is how long one search probe listens at mode: the request's
// and the longest probe reply's wire time, plus replyDelay.
func ProbeWindow(mode hardware.Mode, replyDelay time.Duration) time.Duration {
	const req, reply = 4 + minFrame + 4, 4 + minFrame + 8 // FE…, 68 A 68 C L DI, CS 16; reply DI + 4 value bytes
	return mode.WireTime(req+reply) + replyDelay
}

// Search finds every meter of one protocol version on a multi-drop line
// with the wildcard (AA) and short addressing of the standard, resolving
// collisions. It first asks all meters at once (2007: 0x13 read address
// to AA…AA; 1997, which has no 0x13: a read of 9010). One clean reply
// means one meter; garbled bytes mean several answered together, and the
// search fixes the address bytes one at a time, low byte first (meters
// of one batch differ in their last digits), asking each pattern with a
// read of the energy total (0x11 00010000 / 0x01 9010; a normal or
// abnormal reply both prove the meter). Every probe is sent once and
// listened to for ProbeWindow; a collision is asked twice before it is
// refined.
//
// Collisions: the simulated bus (firmware-sim) delivers the bitwise AND of
// overlapping replies, the worst case of a wired-AND line; when meters'
// addresses and data differ only in bits that do not carry in the
// checksum, the AND can be a valid frame. A clean answer to a pattern with
// wildcards is therefore confirmed at the address it names; a phantom
// address no meter has stays silent there and the pattern is refined. A
// phantom that equals one of the colliding meters' own address (every
// other one's reply a bitwise superset of its reply) cannot be told from
// that meter alone and hides the others; on real lines the meters' reply
// timing differs by far more than a bit, so the bytes garble instead.
//
// It returns the addresses found; on ctx's end what it found so far and
// ctx.Err(); meters that stayed garbled at their full address are named
// in an error wrapping ErrGarbled, beside the others.
func Search(ctx context.Context, p hardware.Port, o SearchOptions) ([]Address, error) {
	if !o.Version.valid() {
		return nil, fmt.Errorf("dlt645: search: version %d", o.Version)
	}
	if o.ReplyDelay <= 0 {
		o.ReplyDelay = DefaultReplyDelay
	}
	switch {
	case o.Preamble == 0:
		o.Preamble = DefaultPreamble
	case o.Preamble < 0:
		o.Preamble = 0
	}
	window := ProbeWindow(o.Mode, o.ReplyDelay)
	probe := func(ctx context.Context, pattern []byte) (addrsearch.Outcome, []byte, error) {
		req := SearchRequest(o.Version, Address(pattern), o.Preamble)
		h, err := addrsearch.Exchange(ctx, p, Encode(req), window, Split, preambleByte, isReply)
		if err != nil {
			return 0, nil, fmt.Errorf("dlt645: search %s: %w", Address(pattern), err)
		}
		out, addr := ClassifySearch(req, h.Frames, h.Noise)
		return out, addr, nil
	}
	order := []int{0, 1, 2, 3, 4, 5}
	found, err := addrsearch.Search(ctx, len(Address{}), order, probe, o.Progress)
	addrs := make([]Address, len(found))
	for i, a := range found {
		addrs[i] = Address(a)
	}
	if errors.Is(err, addrsearch.ErrUnresolved) {
		err = fmt.Errorf("%w: %w", ErrGarbled, err)
	}
	return addrs, err
}

func isReply(b []byte) bool {
	i := 0
	for i < len(b) && b[i] == preambleByte {
		i++
	}
	return len(b) > i+8 && b[i+8]&CtrlReply != 0
}

// SearchRequest is the probe Search sends to pattern: 0x13 read address
// for the 2007 wildcard AA…AA, else a read of the energy total (2007
// 0x11 00010000, 1997 0x01 9010).
func SearchRequest(v Version, pattern Address, preamble int) Frame {
	if v == V2007 && pattern == (Address{0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA}) {
		return Frame{Preamble: preamble, Addr: pattern, Control: FuncReadAddress}
	}
	if v == V1997 {
		return Frame{Preamble: preamble, Addr: pattern, Control: Func97Read, Data: encodeDI(V1997, 0x9010)}
	}
	return Frame{Preamble: preamble, Addr: pattern, Control: FuncRead, Data: encodeDI(V2007, 0x00010000)}
}

// ClassifySearch says what the reply frames (whole, checksum-valid frames
// as Split returns them) and noise bytes heard after req mean: nothing is
// Silence; one reply from an address matching req's, to req's function
// (normal or abnormal), with no noise is Answer with the meter's address
// (for 0x13, the address in DATA must equal the header's); anything else
// is Collision.
func ClassifySearch(req Frame, frames [][]byte, noise int) (addrsearch.Outcome, []byte) {
	if len(frames) == 0 && noise == 0 {
		return addrsearch.Silence, nil
	}
	if len(frames) != 1 || noise != 0 {
		return addrsearch.Collision, nil
	}
	f, err := Decode(frames[0])
	if err != nil || !f.IsReply() || f.Function() != req.Function() || !req.Addr.Matches(f.Addr) {
		return addrsearch.Collision, nil
	}
	if req.Function() == FuncReadAddress && !f.IsAbnormal() && (len(f.Data) != 6 || Address(f.Data) != f.Addr) {
		return addrsearch.Collision, nil
	}
	return addrsearch.Answer, f.Addr[:]
}
