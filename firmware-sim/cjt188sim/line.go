package cjt188sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/townlink/townlink/firmware-sim/internal/rs485"
	"github.com/townlink/townlink/hardware"
)

// DefaultTurnaround is the pause between the end of a request and the
// start of the reply (the same 20 ms as the DL/T 645 simulator; battery
// meters behind M-Bus are often slower: raise Line.Turnaround). A partial
// frame older than 500 ms is dropped.
const DefaultTurnaround = 20 * time.Millisecond

// ErrWireTime reports a Line asked to emulate wire time with a bad Mode.
var ErrWireTime = errors.New("cjt188sim: wire time needs a valid serial mode")

// Line is a bus of CJ/T 188 meters answering on one port (an M-Bus
// converter's RS-485 side, a PTY, or a port of a serialsim.Multidrop):
// every meter hears every request and answers only when T (or AA) and the
// address (byte by byte, or AA) match.
//
// The wildcard AA…AA (the "universal read" of public tools) is answered by
// every meter it matches. With more than one, the replies collide as on a
// real bus: they go out at the same time, and the bytes the master
// receives are the bitwise AND of the overlapping replies (the driven 0
// wins), which almost always breaks the checksum. Stats.Collisions counts
// them; "broadcast read works only with one meter per bus" (protocols.md
// §3.3) is what the gateway sees.
//
// Requests may carry any number of FE bytes and noise in front; bytes that
// are not a valid frame are skipped by re-synchronising on the next 0x68.
// Frames with the direction bit set (replies of other devices) and frames
// for other meters are ignored.
//
// Wire time: with WireTime set, an exchange takes what it would on a real
// line at Mode: from the master's first request byte to its last reply
// byte at least Mode.WireTime(request from its first FE) + Turnaround +
// Mode.WireTime(reply incl. its FE preamble), each reply byte arriving when
// its last bit would (2400 8E1: 4.583 ms per byte; the exact rule is in
// firmware-sim/internal/rs485). Without WireTime replies go out at once
// (after a Slow fault's delay).
//
// Set the exported fields before Serve.
type Line struct {
	Mode       hardware.Mode
	WireTime   bool
	Turnaround time.Duration // 0 means DefaultTurnaround
	Logger     *slog.Logger  // nil: discard

	meters []*Meter
	line   rs485.Line[frame]
}

// Stats counts what a Line saw and did.
type Stats struct {
	Frames     uint64 // valid frames received (any address, any direction)
	Ignored    uint64 // valid frames for no meter on this line, or replies of other devices
	Replies    uint64 // reply frames sent (a collision counts once)
	Collisions uint64 // requests answered by more than one meter
	Faulted    uint64 // replies changed or suppressed by a fault
	Discarded  uint64 // received bytes that were not part of a valid frame or its FE preamble
}

// NewLine puts meters on one line with serial mode mode.
func NewLine(mode hardware.Mode, meters ...*Meter) *Line {
	return &Line{Mode: mode, meters: meters}
}

// Stats returns a snapshot of the counters.
func (l *Line) Stats() Stats {
	var s Stats
	l.line.Locked(func(c *rs485.Stats) { s = Stats(*c) })
	return s
}

// Serve answers requests on p until ctx ends (it returns nil) or p fails.
// It sets p's read timeout.
func (l *Line) Serve(ctx context.Context, p hardware.Port) error {
	turnaround := l.Turnaround
	if turnaround <= 0 {
		turnaround = DefaultTurnaround
	}
	return l.line.Serve(ctx, p, rs485.Config[frame]{
		Name: "cjt188", ErrWireTime: ErrWireTime,
		Mode: l.Mode, WireTime: l.WireTime, Turnaround: turnaround, Logger: l.Logger,
		Preamble: preambleByte,
		Scan:     scan,
		Handle: func(f frame) []rs485.Reply {
			out := make([]rs485.Reply, len(l.meters))
			for i, m := range l.meters {
				r := m.handle(f)
				out[i] = rs485.Reply{Bytes: r.reply, Delay: r.delay, Mine: r.mine, Faulted: r.faulted}
			}
			return out
		},
		Describe: func(f frame) []any {
			return []any{"type", fmt.Sprintf("%02X", f.typ), "addr", fmt.Sprintf("% X", f.addr), "c", fmt.Sprintf("%02X", f.c)}
		},
	})
}
