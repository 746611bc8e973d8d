package rs485

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/townlink/townlink/hardware"
)

const (
	// InterByteGap: a partial frame older than this is dropped (DL/T 645
	// allows at most 500 ms between two bytes of one frame).
	InterByteGap = 500 * time.Millisecond
	linePoll     = 50 * time.Millisecond
	maxPending   = 1024
)

// Stats counts what every Line sees and does; protocol packages add their
// own counters, guarded by the same lock (see Line.Locked).
type Stats struct {
	Frames     uint64 // valid frames received (any address, any direction)
	Ignored    uint64 // valid frames for no meter on this line, or replies of other devices
	Replies    uint64 // reply frames sent (a collision counts once)
	Collisions uint64 // requests answered by more than one meter
	Faulted    uint64 // replies changed or suppressed by a fault
	Discarded  uint64 // received bytes that were not part of a valid frame or its preamble
}

// Reply is one meter's answer to one request frame.
type Reply struct {
	Bytes   []byte        // wire bytes, faults applied; nil: no reply
	Delay   time.Duration // a Slow fault's delay
	Mine    bool          // the request was addressed to this meter (or broadcast)
	Faulted bool          // a fault changed or suppressed the reply
}

// Config is what a Line needs of a protocol and of its user for one Serve.
// F is the protocol's decoded frame.
type Config[F any] struct {
	Name        string // the protocol package ("dlt645"): error and log prefix
	ErrWireTime error  // the package's sentinel for WireTime with a bad Mode

	Mode       hardware.Mode
	WireTime   bool          // emulate wire time at Mode (see the protocol's Line)
	Turnaround time.Duration // pause between the end of a request and the reply
	Logger     *slog.Logger  // nil: discard

	// Preamble is the wake-up byte (FE) that may precede a frame; it is
	// counted as part of the request, not as discarded.
	Preamble byte
	// Scan finds the first complete, valid frame in buf. ok: the frame
	// occupies buf[start:end] (start is its first byte after any
	// preamble). !ok: buf[:keep] is garbage that can be dropped; buf[keep:]
	// may still become a frame when more bytes arrive.
	Scan func(buf []byte) (f F, start, end, keep int, ok bool)
	// Handle gives f to every meter on the line, in order, and returns
	// their replies. It runs with the Line's lock held, so it may count
	// protocol-specific stats guarded by it.
	Handle func(f F) []Reply
	// Describe gives the log attributes of a request frame.
	Describe func(f F) []any
}

// Line is the protocol-independent part of a multi-drop line of meters:
// it reads requests from a port, resynchronises on noise, hands every
// valid frame to the meters, makes overlapping replies collide, and writes
// the result when it would arrive on a real line. It keeps the common
// counters. The zero Line is ready; it must not be copied after first use.
//
// Wire time: with Config.WireTime set, an exchange takes what it would on
// a real line at Mode:
//
//	reply start = max(last request byte read, first request byte read + Mode.WireTime(request bytes)) + Turnaround (+ Slow fault)
//	reply byte i (0-based) is written at reply start + Mode.WireTime(i+1)
//
// where the request bytes count everything from its first preamble byte to
// its end byte. So from the moment the master starts writing a request to
// the moment it has the last reply byte, at least
//
//	Mode.WireTime(request) + Turnaround + Mode.WireTime(reply incl. its preamble)
//
// passes (2400 8E1: 4.583 ms per byte). Without WireTime replies go out at
// once (after a Slow fault's delay).
type Line[F any] struct {
	mu    sync.Mutex
	stats Stats
}

// Locked runs f with the Line's lock held, on its counters: to take a
// snapshot together with protocol-specific counters guarded by it.
func (l *Line[F]) Locked(f func(*Stats)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(&l.stats)
}

// Serve answers requests on p until ctx ends (it returns nil) or p fails.
// It sets p's read timeout.
func (l *Line[F]) Serve(ctx context.Context, p hardware.Port, c Config[F]) error {
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if c.WireTime {
		if err := c.Mode.Validate(); err != nil {
			return fmt.Errorf("%w: %w", c.ErrWireTime, err)
		}
	}
	if err := p.SetReadTimeout(linePoll); err != nil {
		return fmt.Errorf("%s: line: set read timeout: %w", c.Name, err)
	}
	var (
		pending []byte
		arrived []chunk // arrival time of pending's bytes
		lastRx  time.Time
		rd      = make([]byte, 512)
	)
	drop := func(n int) {
		pending = append(pending[:0], pending[n:]...)
		arrived = dropChunks(arrived, n)
	}
	discard := func(n int) { l.Locked(func(s *Stats) { s.Discarded += uint64(n) }) }
	for ctx.Err() == nil {
		n, err := p.Read(rd)
		now := time.Now()
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			if ctx.Err() != nil { // the port went away because everything is stopping
				return nil
			}
			return fmt.Errorf("%s: line: read: %w", c.Name, err)
		}
		if n == 0 {
			if len(pending) > 0 && now.Sub(lastRx) > InterByteGap {
				discard(len(pending))
				drop(len(pending))
			}
			continue
		}
		pending = append(pending, rd[:n]...)
		arrived = append(arrived, chunk{end: len(pending), at: now})
		lastRx = now
		for {
			f, start, end, keep, ok := c.Scan(pending)
			if !ok {
				for keep > 0 && pending[keep-1] == c.Preamble { // a preamble whose frame is still coming
					keep--
				}
				if keep = max(keep, len(pending)-maxPending); keep > 0 {
					discard(keep)
					drop(keep)
				}
				break
			}
			first := start
			for first > 0 && pending[first-1] == c.Preamble {
				first--
			}
			if first > 0 {
				discard(first)
			}
			req := exchange{
				first: arrivalOf(arrived, first),
				last:  arrivalOf(arrived, end-1),
				size:  end - first,
			}
			drop(end)
			if err := l.answer(ctx, p, &c, f, req, log); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
	return nil
}

type chunk struct {
	end int // index just past the chunk's last byte in pending
	at  time.Time
}

func arrivalOf(cs []chunk, i int) time.Time {
	for _, c := range cs {
		if i < c.end {
			return c.at
		}
	}
	return time.Now()
}

func dropChunks(cs []chunk, n int) []chunk {
	out := cs[:0]
	for _, c := range cs {
		if c.end > n {
			out = append(out, chunk{end: c.end - n, at: c.at})
		}
	}
	return out
}

// exchange is when and how long a request was on the wire.
type exchange struct {
	first, last time.Time
	size        int
}

func (l *Line[F]) answer(ctx context.Context, p hardware.Port, c *Config[F], f F, req exchange, log *slog.Logger) error {
	var (
		replies [][]byte
		delay   time.Duration
	)
	l.Locked(func(s *Stats) {
		mine := false
		for _, r := range c.Handle(f) {
			mine = mine || r.Mine
			if r.Faulted {
				s.Faulted++
			}
			if r.Bytes != nil {
				replies = append(replies, r.Bytes)
				delay = max(delay, r.Delay)
			}
		}
		s.Frames++
		if !mine {
			s.Ignored++
		}
		if len(replies) > 1 {
			s.Collisions++
		}
		if len(replies) > 0 {
			s.Replies++
		}
	})
	if log.Enabled(ctx, slog.LevelDebug) {
		log.Debug(c.Name+" request", append(c.Describe(f), "replies", len(replies))...)
	}
	if len(replies) == 0 {
		return nil
	}
	out := Collide(replies)
	start := time.Now().Add(delay)
	if c.WireTime {
		start = maxTime(req.last, req.first.Add(c.Mode.WireTime(req.size))).Add(c.Turnaround + delay)
	}
	return l.transmit(ctx, p, c, out, start)
}

// Collide is what the master receives when replies overlap on the bus:
// the bitwise AND of the overlapping bytes (the driven 0 wins).
func Collide(replies [][]byte) []byte {
	out := append([]byte(nil), replies[0]...)
	for _, r := range replies[1:] {
		for i := range min(len(out), len(r)) {
			out[i] &= r[i]
		}
		if len(r) > len(out) {
			out = append(out, r[len(out):]...)
		}
	}
	return out
}

// transmit writes out starting at start; with WireTime each byte leaves
// when its last bit would have on the wire.
func (l *Line[F]) transmit(ctx context.Context, p hardware.Port, c *Config[F], out []byte, start time.Time) error {
	if !c.WireTime {
		if err := sleepUntil(ctx, start); err != nil {
			return err
		}
		if _, err := p.Write(out); err != nil {
			return fmt.Errorf("%s: line: write reply: %w", c.Name, err)
		}
		return nil
	}
	for i := 0; i < len(out); {
		if err := sleepUntil(ctx, start.Add(c.Mode.WireTime(i+1))); err != nil {
			return err
		}
		now := time.Now()
		j := i + 1
		for j < len(out) && !start.Add(c.Mode.WireTime(j+1)).After(now) {
			j++
		}
		if _, err := p.Write(out[i:j]); err != nil {
			return fmt.Errorf("%s: line: write reply: %w", c.Name, err)
		}
		i = j
	}
	return nil
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
