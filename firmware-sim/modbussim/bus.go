package modbussim

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

// pollInterval bounds each Read so Serve notices a cancelled context, and
// is also the silence after which unparsed bytes count as garbage.
const pollInterval = 20 * time.Millisecond

// Bus is several units on one multi-drop line. Set the exported fields
// before Serve.
type Bus struct {
	// WireTime delays each reply by the wire time of the request and of
	// the reply at Mode, plus Turnaround, so that line timing can be
	// measured on a PTY (which has none).
	WireTime bool
	// Turnaround is the slave's think time before a reply when WireTime is
	// on; 0 means t3.5 (3.5 characters, 1.75 ms above 19200 bit/s).
	Turnaround time.Duration
	// Now is the clock handed to Unit.Animate; nil means time.Now.
	Now func() time.Time
	// Logger receives one debug record per frame; nil discards.
	Logger *slog.Logger

	mode  hardware.Mode
	units []*Unit

	mu    sync.Mutex
	stats Stats
}

// Stats counts what a Bus saw.
type Stats struct {
	Frames     uint64 // requests with a good CRC, whoever they were for
	Broadcasts uint64 // frames to unit 0 (writes applied to all, never answered)
	Ignored    uint64 // good frames for units not on this bus
	Dropped    uint64 // bytes dropped while resyncing (bad CRC, noise, cut frames)
	Units      map[byte]UnitStats
}

// UnitStats counts one unit's traffic.
type UnitStats struct {
	Requests   uint64 // frames addressed to the unit
	Replies    uint64 // replies written (exceptions and bad-CRC replies included)
	Exceptions uint64 // exception replies, injected or not
	Suppressed uint64 // requests left unanswered by a Silent fault
}

// NewBus returns a bus of units on a line with mode (used for wire-time
// emulation). It does no I/O; Serve checks the unit ids.
func NewBus(mode hardware.Mode, units ...*Unit) *Bus {
	return &Bus{mode: mode, units: units}
}

// Stats returns a copy of the counters.
func (b *Bus) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats
	s.Units = make(map[byte]UnitStats, len(b.units))
	for _, u := range b.units {
		if u != nil {
			s.Units[u.id] = b.stats.Units[u.id]
		}
	}
	return s
}

func (b *Bus) count(fn func(s *Stats)) {
	b.mu.Lock()
	if b.stats.Units == nil {
		b.stats.Units = map[byte]UnitStats{}
	}
	fn(&b.stats)
	b.mu.Unlock()
}

func (b *Bus) countUnit(id byte, fn func(s *UnitStats)) {
	b.count(func(s *Stats) {
		us := s.Units[id]
		fn(&us)
		s.Units[id] = us
	})
}

func (b *Bus) check() error {
	seen := map[byte]bool{}
	for _, u := range b.units {
		if u == nil {
			return fmt.Errorf("%w: nil unit", ErrBus)
		}
		if u.id < 1 || u.id > 247 {
			return fmt.Errorf("%w: unit id %d (want 1..247)", ErrBus, u.id)
		}
		if seen[u.id] {
			return fmt.Errorf("%w: unit id %d twice", ErrBus, u.id)
		}
		seen[u.id] = true
	}
	if b.WireTime {
		if err := b.mode.Validate(); err != nil {
			return fmt.Errorf("%w: wire time needs a mode: %w", ErrBus, err)
		}
	}
	return nil
}

func (b *Bus) unit(id byte) *Unit {
	for _, u := range b.units {
		if u.id == id {
			return u
		}
	}
	return nil
}

func (b *Bus) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *Bus) log() *slog.Logger {
	if b.Logger != nil {
		return b.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Serve answers requests on p until ctx ends (then it returns nil) or the
// port fails. It answers only its own unit ids and ignores the rest;
// broadcast writes (unit 0) go to every unit and get no reply; frames with
// a bad CRC are dropped byte by byte until the stream resyncs, like a real
// slave that never answers a damaged frame.
func (b *Bus) Serve(ctx context.Context, p hardware.Port) error {
	if err := b.check(); err != nil {
		return err
	}
	log := b.log()
	if err := p.SetReadTimeout(pollInterval); err != nil {
		return fmt.Errorf("modbussim: set read timeout: %w", err)
	}
	var buf []byte
	tmp := make([]byte, 512)
	for {
		if ctx.Err() != nil {
			return nil
		}
		n, err := p.Read(tmp)
		idle := false
		if n > 0 {
			buf = append(buf, tmp[:n]...)
		}
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("modbussim: read: %w", err)
			}
			idle = true
		}
		for len(buf) > 0 {
			fl, st := splitFrame(buf, idle)
			if st == needMore {
				break
			}
			if st == dropByte {
				b.count(func(s *Stats) { s.Dropped++ })
				buf = buf[1:]
				continue
			}
			frame := buf[:fl:fl]
			buf = buf[fl:]
			if err := b.handle(ctx, p, frame, log); err != nil {
				return err
			}
		}
		if len(buf) == 0 {
			buf = nil // let the backing array go
		}
	}
}

// handle answers one frame with a good CRC.
func (b *Bus) handle(ctx context.Context, p hardware.Port, frame []byte, log *slog.Logger) error {
	b.count(func(s *Stats) { s.Frames++ })
	id, pdu := frame[0], frame[1:len(frame)-2]
	if id == 0 {
		b.count(func(s *Stats) { s.Broadcasts++ })
		if fc := pdu[0]; fc == 5 || fc == 6 || fc == 15 || fc == 16 {
			for _, u := range b.units {
				if k := u.takeFault().Kind; k != KindSilent && k != KindException {
					u.process(pdu)
				}
			}
		}
		if log.Enabled(ctx, slog.LevelDebug) {
			log.Debug("broadcast", "frame", fmt.Sprintf("% X", frame))
		}
		return nil
	}
	u := b.unit(id)
	if u == nil {
		b.count(func(s *Stats) { s.Ignored++ })
		return nil
	}
	b.countUnit(id, func(s *UnitStats) { s.Requests++ })
	f := u.takeFault()
	debug := log.Enabled(ctx, slog.LevelDebug)
	if f.Kind == KindSilent {
		b.countUnit(id, func(s *UnitStats) { s.Suppressed++ })
		if debug {
			log.Debug("silent", "unit", id, "request", fmt.Sprintf("% X", frame))
		}
		return nil
	}
	var reply []byte
	if f.Kind == KindException {
		reply = exception(pdu[0], f.Code)
	} else {
		u.mu.Lock()
		fn := u.animate
		u.mu.Unlock()
		if fn != nil {
			fn(b.now(), u)
		}
		reply = u.process(pdu)
	}
	adu := appendCRC(append([]byte{id}, reply...))
	if f.Kind == KindBadCRC {
		adu[len(adu)-1] ^= 0xFF
	}
	var delay time.Duration
	if f.Kind == KindSlow {
		delay += f.Delay
	}
	if b.WireTime {
		delay += b.mode.WireTime(len(frame)) + b.mode.WireTime(len(adu)) + b.turnaround()
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	if _, err := p.Write(adu); err != nil {
		return fmt.Errorf("modbussim: unit %d: write reply: %w", id, err)
	}
	b.countUnit(id, func(s *UnitStats) {
		s.Replies++
		if reply[0]&0x80 != 0 {
			s.Exceptions++
		}
	})
	if debug {
		log.Debug("reply", "unit", id, "fault", f.String(), "request", fmt.Sprintf("% X", frame), "reply", fmt.Sprintf("% X", adu))
	}
	return nil
}

func (b *Bus) turnaround() time.Duration {
	if b.Turnaround > 0 {
		return b.Turnaround
	}
	if b.mode.Baud > 19200 {
		return 1750 * time.Microsecond
	}
	return b.mode.CharTime() * 7 / 2
}
