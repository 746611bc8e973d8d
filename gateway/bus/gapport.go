package bus

import (
	"errors"
	"time"

	"github.com/townlink/townlink/hardware"
)

// errProbe ends a probe (see Stats.Probes) once one request went unanswered.
var errProbe = errors.New("bus: probe of a silent device: its one request went unanswered")

// gapPort keeps the silence a line needs between frames, counts the
// line's traffic, limits a probe to one unanswered request, and turns I/O
// failures of the port itself into portError so the owner reopens it. Only
// the line's goroutine uses it.
type gapPort struct {
	Port
	clock Clock
	stats *counters
	mode  hardware.Mode
	gap   time.Duration // the line's: max(InterFrameGap(mode), Config.Gap)

	gapDev     time.Duration // the device's being polled (or the longest, for a job)
	quiet      time.Time     // when the last byte was (or will have been) on the wire
	unanswered bool          // a request went out and no byte has come back since
	cut        func()        // non-nil during a probe: ends it
	wasCut     bool
	heard      bool // a byte came back during this poll
}

type portError struct{ err error }

func (e *portError) Error() string { return e.err.Error() }
func (e *portError) Unwrap() error { return e.err }

// isPortFailure reports errors after which the port must be reopened.
func isPortFailure(err error) bool {
	var pe *portError
	return err != nil && errors.As(err, &pe)
}

// InterFrameGap is the silence a line at mode m needs between two frames:
// 3.5 characters, and at least 1.75 ms above 19200 bit/s (Modbus over
// Serial Line §2.5.1.1, protocols.md §4.1).
func InterFrameGap(m hardware.Mode) time.Duration {
	g := 35 * m.CharTime() / 10
	if m.Baud > 19200 {
		g = max(g, 1750*time.Microsecond)
	}
	return g
}

// begin starts a poll (cut non-nil: a probe) or a job, keeping gapDev of
// silence before each request.
func (g *gapPort) begin(gapDev time.Duration, cut func()) {
	g.gapDev, g.cut, g.wasCut, g.unanswered, g.heard = gapDev, cut, false, false, false
}

// end finishes a poll or job and reports whether a probe was cut short and
// whether any byte came back.
func (g *gapPort) end() (cut, heard bool) {
	g.countUnanswered()
	cut, heard = g.wasCut, g.heard
	g.gapDev, g.cut, g.wasCut = 0, nil, false
	return cut, heard
}

func (g *gapPort) countUnanswered() {
	if g.unanswered {
		g.unanswered = false
		g.stats.unanswered()
	}
}

func (g *gapPort) Write(b []byte) (int, error) {
	if g.cut != nil && g.unanswered {
		// A probe: the device already left one request unanswered.
		g.wasCut = true
		g.cut()
		return 0, errProbe
	}
	g.countUnanswered()
	var waited time.Duration
	if !g.quiet.IsZero() {
		if wait := max(g.gap, g.gapDev) - g.clock.Now().Sub(g.quiet); wait > 0 {
			sleep(g.clock, wait)
			waited = wait
		}
	}
	n, err := g.Port.Write(b)
	// The write returns once the bytes are queued; the line is busy until
	// the last one has left.
	g.quiet = g.clock.Now().Add(g.mode.WireTime(n))
	g.unanswered = n > 0
	g.stats.request(n, waited)
	if err != nil {
		return n, &portError{err}
	}
	return n, nil
}

func (g *gapPort) Read(b []byte) (int, error) {
	n, err := g.Port.Read(b)
	if n > 0 {
		g.quiet = g.clock.Now()
		g.unanswered, g.heard = false, true
		g.stats.reply(n)
	}
	if err != nil && !isTimeout(err) {
		return n, &portError{err}
	}
	return n, err
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
