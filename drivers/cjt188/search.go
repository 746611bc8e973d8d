package cjt188

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/townlink/townlink/drivers/internal/addrsearch"
	"github.com/townlink/townlink/hardware"
)

// DefaultReplyDelay is how long a search probe allows a meter before it
// starts to answer. Battery meters behind M-Bus converters are slow.
const DefaultReplyDelay = 500 * time.Millisecond

// ErrGarbled: a meter whose replies stay garbled even at its full address.
var ErrGarbled = errors.New("cjt188: garbled reply at a full address")

// Found is one meter Search found: its type (T of the reply) and address.
type Found struct {
	Type    byte
	Address Address
}

// SearchOptions tunes Search.
type SearchOptions struct {
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
// and the address reply's wire time, plus replyDelay.
func ProbeWindow(mode hardware.Mode, replyDelay time.Duration) time.Duration {
	const req, reply = 4 + minFrame + 3, 4 + minFrame + 3
	return mode.WireTime(req+reply) + replyDelay
}

// Search finds every CJ/T 188 meter on a multi-drop line with the
// standard's read address (C = 0x03, DI 810A) sent to type AA (any; when
// no meter answers it, to each of SearchTypes in turn) and
// address patterns of wildcard bytes: first AA…AA (one clean reply: one
// meter, its type and address in the reply header); on garbled bytes
// (several meters answered together) it fixes the address bytes one at a
// time, low byte first, until every pattern has at most one meter. A
// collision is asked twice before it is refined.
//
// It returns the meters found; on ctx's end what it found so far and
// ctx.Err(); meters that stayed garbled at their full address are named in
// an error wrapping ErrGarbled, beside the others.
func Search(ctx context.Context, p hardware.Port, o SearchOptions) ([]Found, error) {
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
	var ser byte
	var out []Found
	offset := 0
	for i, typ := range append([]byte{TypeAny}, SearchTypes...) {
		if i > 0 && len(out) > 0 {
			break // meters answered the wildcard type: no need to ask each type
		}
		probe := func(ctx context.Context, pattern []byte) (addrsearch.Outcome, []byte, error) {
			req := SearchRequest(typ, Address(pattern), ser, o.Preamble)
			ser++
			h, err := addrsearch.Exchange(ctx, p, Encode(req), window, Split, preambleByte, isReply)
			if err != nil {
				return 0, nil, fmt.Errorf("cjt188: search %02X %s: %w", typ, Address(pattern), err)
			}
			out, addr := ClassifySearch(req, h.Frames, h.Noise)
			return out, addr, nil
		}
		left := len(SearchTypes) - i // one probe per type still to ask, if nothing answers
		if i == 0 {
			left = 0
		}
		var progress addrsearch.Progress
		if o.Progress != nil {
			base, have := offset, len(out)
			progress = func(done, l, found int) {
				offset = base + done
				o.Progress(base+done, l+left, have+found)
			}
		}
		found, err := addrsearch.Search(ctx, len(Address{}), []int{0, 1, 2, 3, 4, 5, 6}, probe, progress)
		for _, b := range found {
			out = append(out, Found{Type: b[0], Address: Address(b[1:])})
		}
		if errors.Is(err, addrsearch.ErrUnresolved) {
			return out, fmt.Errorf("%w: %w", ErrGarbled, err)
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// SearchTypes are the meter types Search asks one by one when no meter
// answers the wildcard type AA (some meters answer their own type only).
var SearchTypes = []byte{TypeColdWater, TypeHotWater, TypeDrinking, TypeReclaimed, TypeGas, TypeHeat, TypeHeatCold, TypeElectric}

func isReply(b []byte) bool { return len(b) > 9 && b[9]&CtrlReply != 0 }

// SearchRequest is the probe Search sends: read address (0x03, DI 810A
// high byte first, SER) to meter type typ (AA: any) and pattern.
func SearchRequest(typ byte, pattern Address, ser byte, preamble int) Frame {
	return Frame{Preamble: preamble, Type: typ, Addr: pattern, Control: FuncReadAddress,
		Data: append(diBytes(DIReadAddr, DefaultDIOrder), ser)}
}

// ClassifySearch says what the reply frames (whole, checksum-valid frames
// as Split returns them) and noise bytes heard after req mean: nothing is
// Silence; one read-address reply (normal, DI 810A in either order and
// req's SER) from an address matching req's, with no noise, is Answer with
// the bytes T A0..A6; anything else is Collision.
func ClassifySearch(req Frame, frames [][]byte, noise int) (addrsearch.Outcome, []byte) {
	if len(frames) == 0 && noise == 0 {
		return addrsearch.Silence, nil
	}
	if len(frames) != 1 || noise != 0 {
		return addrsearch.Collision, nil
	}
	f, err := Decode(frames[0])
	if err != nil || !f.IsReply() || f.IsAbnormal() || f.Function() != FuncReadAddress ||
		(req.Type != TypeAny && f.Type != req.Type) ||
		!req.Addr.Matches(f.Addr) || !hasDI(f.Data, DIReadAddr) || len(f.Data) < 3 || f.Data[2] != req.Data[2] {
		return addrsearch.Collision, nil
	}
	return addrsearch.Answer, append([]byte{f.Type}, f.Addr[:]...)
}
