package cjt188

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
	// DefaultTurnaround is the pause between the end of a request and the
	// start of the reply (the same 20 ms as the DL/T 645 simulator; battery
	// meters behind M-Bus are often slower: raise Line.Turnaround).
	DefaultTurnaround = 20 * time.Millisecond
	// interByteGap: a partial frame older than this is dropped.
	interByteGap = 500 * time.Millisecond
	linePoll     = 50 * time.Millisecond
	maxPending   = 1024
)

// ErrWireTime reports a Line asked to emulate wire time with a bad Mode.
var ErrWireTime = errors.New("cjt188: wire time needs a valid serial mode")

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
// line at Mode:
//
//	reply start = max(last request byte read, first request byte read + Mode.WireTime(request bytes)) + Turnaround (+ Slow fault)
//	reply byte i (0-based) is written at reply start + Mode.WireTime(i+1)
//
// where the request bytes count everything from its first FE to its 16.
// So from the moment the master starts writing a request to the moment it
// has the last reply byte, at least
//
//	Mode.WireTime(request) + Turnaround + Mode.WireTime(reply incl. its FE preamble)
//
// passes (2400 8E1: 4.583 ms per byte). Without WireTime replies go out at
// once (after a Slow fault's delay).
//
// Set the exported fields before Serve.
type Line struct {
	Mode       hardware.Mode
	WireTime   bool
	Turnaround time.Duration // 0 means DefaultTurnaround
	Logger     *slog.Logger  // nil: discard

	meters []*Meter

	mu    sync.Mutex
	stats Stats
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
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

func (l *Line) count(f func(*Stats)) {
	l.mu.Lock()
	f(&l.stats)
	l.mu.Unlock()
}

func (l *Line) turnaround() time.Duration {
	if l.Turnaround > 0 {
		return l.Turnaround
	}
	return DefaultTurnaround
}

// Serve answers requests on p until ctx ends (it returns nil) or p fails.
// It sets p's read timeout.
func (l *Line) Serve(ctx context.Context, p hardware.Port) error {
	log := l.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if l.WireTime {
		if err := l.Mode.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrWireTime, err)
		}
	}
	if err := p.SetReadTimeout(linePoll); err != nil {
		return fmt.Errorf("cjt188: line: set read timeout: %w", err)
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
	for ctx.Err() == nil {
		n, err := p.Read(rd)
		now := time.Now()
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			if ctx.Err() != nil { // the port went away because everything is stopping
				return nil
			}
			return fmt.Errorf("cjt188: line: read: %w", err)
		}
		if n == 0 {
			if len(pending) > 0 && now.Sub(lastRx) > interByteGap {
				l.count(func(s *Stats) { s.Discarded += uint64(len(pending)) })
				drop(len(pending))
			}
			continue
		}
		pending = append(pending, rd[:n]...)
		arrived = append(arrived, chunk{end: len(pending), at: now})
		lastRx = now
		for {
			f, start, end, keep, ok := scan(pending)
			if !ok {
				for keep > 0 && pending[keep-1] == preambleByte { // a preamble whose frame is still coming
					keep--
				}
				if keep = max(keep, len(pending)-maxPending); keep > 0 {
					l.count(func(s *Stats) { s.Discarded += uint64(keep) })
					drop(keep)
				}
				break
			}
			first := start
			for first > 0 && pending[first-1] == preambleByte {
				first--
			}
			if first > 0 {
				l.count(func(s *Stats) { s.Discarded += uint64(first) })
			}
			req := exchange{
				first: arrivalOf(arrived, first),
				last:  arrivalOf(arrived, end-1),
				size:  end - first,
			}
			drop(end)
			if err := l.answer(ctx, p, f, req, log); err != nil {
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

func (l *Line) answer(ctx context.Context, p hardware.Port, f frame, req exchange, log *slog.Logger) error {
	var (
		replies [][]byte
		delay   time.Duration
		mine    bool
	)
	for _, m := range l.meters {
		r := m.handle(f)
		mine = mine || r.mine
		if r.faulted {
			l.count(func(s *Stats) { s.Faulted++ })
		}
		if r.reply != nil {
			replies = append(replies, r.reply)
			delay = max(delay, r.delay)
		}
	}
	l.count(func(s *Stats) {
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
	log.Debug("cjt188 request", "type", fmt.Sprintf("%02X", f.typ), "addr", fmt.Sprintf("% X", f.addr), "c", fmt.Sprintf("%02X", f.c), "replies", len(replies))
	if len(replies) == 0 {
		return nil
	}
	out := collide(replies)
	start := time.Now().Add(delay)
	if l.WireTime {
		start = maxTime(req.last, req.first.Add(l.Mode.WireTime(req.size))).Add(l.turnaround() + delay)
	}
	return l.transmit(ctx, p, out, start)
}

// collide is what the master receives when replies overlap on the bus.
func collide(replies [][]byte) []byte {
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
func (l *Line) transmit(ctx context.Context, p hardware.Port, out []byte, start time.Time) error {
	if !l.WireTime {
		if err := sleepUntil(ctx, start); err != nil {
			return err
		}
		if _, err := p.Write(out); err != nil {
			return fmt.Errorf("cjt188: line: write reply: %w", err)
		}
		return nil
	}
	for i := 0; i < len(out); {
		if err := sleepUntil(ctx, start.Add(l.Mode.WireTime(i+1))); err != nil {
			return err
		}
		now := time.Now()
		j := i + 1
		for j < len(out) && !start.Add(l.Mode.WireTime(j+1)).After(now) {
			j++
		}
		if _, err := p.Write(out[i:j]); err != nil {
			return fmt.Errorf("cjt188: line: write reply: %w", err)
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
