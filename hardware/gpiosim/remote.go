package gpiosim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/townlink/townlink/hardware/gpio"
)

// This file is the client side of simulated lines served over a
// Unix-domain socket by another process (firmware-sim/pulsesim.Server, run
// by townsim). See doc.go, "Socket protocol", for the protocol.

// Line name prefixes of a socket-served line: "sim:/run/townsim/DI1" or
// "unix:/run/townsim/DI1" is Dial("/run/townsim/DI1") (see SocketPath).
const (
	Prefix     = "sim:"
	UnixPrefix = "unix:"
)

// HandshakeTimeout bounds Dial: connecting and reading the state line.
const HandshakeTimeout = 2 * time.Second

// MaxMessage is the longest protocol line (comments included), newline
// excluded.
const MaxMessage = 256

// ErrProtocol: the simulator sent something that is not the protocol (a
// malformed line, an edge that does not change the level or goes back in
// time). Line errors caused by it wrap both gpio.ErrLine and ErrProtocol.
var ErrProtocol = errors.New("gpiosim: bad remote line message")

// SocketPath reports whether name names a remote simulated line
// ("sim:PATH" or "unix:PATH") and returns PATH.
func SocketPath(name string) (path string, ok bool) {
	for _, p := range []string{Prefix, UnixPrefix} {
		if rest, found := strings.CutPrefix(name, p); found {
			return rest, true
		}
	}
	return "", false
}

// ParseMessage parses one protocol line (without its newline):
// "<unix-nanos> <0|1>", the time as a decimal int64 of nanoseconds since
// 1970-01-01 UTC (at most 19 digits, no sign), one space, and the level
// (1: high). ok is false for a comment line (starting with '#'), which
// carries nothing.
func ParseMessage(line []byte) (e gpio.Edge, ok bool, err error) {
	if len(line) > MaxMessage {
		return gpio.Edge{}, false, fmt.Errorf("%w: line of %d bytes (at most %d)", ErrProtocol, len(line), MaxMessage)
	}
	if len(line) > 0 && line[0] == '#' {
		return gpio.Edge{}, false, nil
	}
	ts, lvl, found := bytes.Cut(line, []byte{' '})
	if !found {
		return gpio.Edge{}, false, fmt.Errorf("%w: %q: want \"<unix-nanos> <0|1>\"", ErrProtocol, clipBytes(line))
	}
	if len(ts) == 0 || len(ts) > 19 {
		return gpio.Edge{}, false, fmt.Errorf("%w: %q: time %q is not 1 to 19 digits", ErrProtocol, clipBytes(line), clipBytes(ts))
	}
	var ns int64
	for _, c := range ts {
		if c < '0' || c > '9' {
			return gpio.Edge{}, false, fmt.Errorf("%w: %q: time %q is not a number of nanoseconds", ErrProtocol, clipBytes(line), clipBytes(ts))
		}
		d := int64(c - '0')
		if ns > (1<<63-1-d)/10 {
			return gpio.Edge{}, false, fmt.Errorf("%w: %q: time %s overflows int64 nanoseconds", ErrProtocol, clipBytes(line), ts)
		}
		ns = ns*10 + d
	}
	switch string(lvl) {
	case "0":
		e.Level = gpio.Low
	case "1":
		e.Level = gpio.High
	default:
		return gpio.Edge{}, false, fmt.Errorf("%w: %q: level %q is not 0 or 1", ErrProtocol, clipBytes(line), clipBytes(lvl))
	}
	e.Time = time.Unix(0, ns)
	return e, true, nil
}

// AppendMessage appends e as a protocol line, newline included.
func AppendMessage(dst []byte, e gpio.Edge) []byte {
	dst = strconv.AppendInt(dst, e.Time.UnixNano(), 10)
	dst = append(dst, ' ')
	if e.Level {
		return append(dst, '1', '\n')
	}
	return append(dst, '0', '\n')
}

func clipBytes(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// remoteDecoder splits a byte stream into protocol lines and checks the
// sequence: a state line first, then edges that each change the level
// and do not go back in time.
type remoteDecoder struct {
	buf    []byte
	state  bool // the state line was read
	level  gpio.Level
	last   time.Time
	offset int64 // bytes consumed, for errors
}

// feed appends stream bytes.
func (d *remoteDecoder) feed(b []byte) { d.buf = append(d.buf, b...) }

// next returns the next edge (or the state line, when state was false)
// from the buffered bytes; ok is false when no complete line is buffered.
func (d *remoteDecoder) next() (e gpio.Edge, ok bool, err error) {
	for {
		i := bytes.IndexByte(d.buf, '\n')
		if i < 0 {
			if len(d.buf) > MaxMessage {
				return gpio.Edge{}, false, fmt.Errorf("%w: at byte %d: no newline in %d bytes (lines are at most %d)", ErrProtocol, d.offset, len(d.buf), MaxMessage)
			}
			if len(d.buf) == 0 {
				d.buf = d.buf[:0:0] // let a large drained buffer go
			}
			return gpio.Edge{}, false, nil
		}
		line := d.buf[:i]
		at := d.offset
		d.buf = d.buf[i+1:]
		d.offset += int64(i + 1)
		e, ok, err := ParseMessage(line)
		if err != nil {
			return gpio.Edge{}, false, fmt.Errorf("at byte %d: %w", at, err)
		}
		if !ok {
			continue
		}
		if !d.state {
			// The state line's time is when the line took its level; the
			// first edge is not checked against it (an edge the simulator
			// played late may carry an earlier time).
			d.state, d.level = true, e.Level
			return e, true, nil
		}
		switch {
		case e.Level == d.level:
			return gpio.Edge{}, false, fmt.Errorf("%w: at byte %d: edge at %s to %s, but the line is already %s", ErrProtocol, at, e.Time.Format(time.RFC3339Nano), e.Level, d.level)
		case !d.last.IsZero() && e.Time.Before(d.last):
			return gpio.Edge{}, false, fmt.Errorf("%w: at byte %d: edge at %s is before the previous one at %s", ErrProtocol, at, e.Time.Format(time.RFC3339Nano), d.last.Format(time.RFC3339Nano))
		}
		d.level, d.last = e.Level, e.Time
		return e, true, nil
	}
}

// remote is a gpio.Line whose edges come from a simulator over a Unix socket.
type remote struct {
	name string // as opened, for errors
	conn net.Conn
	dec  remoteDecoder
	rbuf []byte

	mu     sync.Mutex
	level  gpio.Level // after the last edge returned
	next   *gpio.Edge // received, not yet due
	floor  time.Time  // no edge is returned before this (see Dial)
	closed bool
}

var _ gpio.Line = (*remote)(nil)

// Dial connects to the simulated line served on the Unix-domain socket at
// path (by firmware-sim/pulsesim.Server, e.g. townsim's DI1) and reads its
// state line; it gives up after HandshakeTimeout. A gateway dials it for a
// pin named "sim:PATH" or "unix:PATH" (SocketPath).
//
// The line's clock is the wall clock: the simulator runs on the same
// machine and stamps each edge with that clock. It sends each edge ahead
// of its time (firmware-sim/pulsesim.DefaultLead, a second), and WaitEdge
// delivers it when its time has come, with the simulator's timestamp,
// before any deadline at or after it; before it reports a deadline passed it takes
// whatever waits in the socket (a reader that comes back late, after a
// slow fsync, still gets every edge with its own time). So a reader sees
// what a line with kernel timestamps would show, even when the
// simulator's timers or the reader run late. WaitEdge never returns an
// edge earlier than a time the line has already given out (the time it
// was opened, Now, a passed deadline, the previous edge): an edge that
// arrives after such a time (the simulator fell behind by more than its
// lead) is reported at that time, as the Linux backend stamps events when
// they are read. Edges sent while no one is connected are not seen (as
// the kernel reports no events for a line nobody requested); the state
// line gives the level on (re)connection. A closed connection or a
// protocol error is a line error (gpio.ErrLine): a gpio.Input connects
// again with back-off.
func Dial(path string) (gpio.Line, error) {
	name := Prefix + path
	if path == "" {
		return nil, fmt.Errorf("%w: %q: no socket path", gpio.ErrNoLine, name)
	}
	d := net.Dialer{Timeout: HandshakeTimeout}
	conn, err := d.Dial("unix", path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s: no simulator socket (is townsim running?): %w", gpio.ErrLine, name, err)
		}
		return nil, fmt.Errorf("%w: %s: connect: %w", gpio.ErrLine, name, err)
	}
	r := &remote{name: name, conn: conn, rbuf: make([]byte, 4096)}
	if err := conn.SetReadDeadline(time.Now().Add(HandshakeTimeout)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: %s: %w", gpio.ErrLine, name, err)
	}
	for {
		e, ok, err := r.dec.next()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("%w: %s: state line: %w", gpio.ErrLine, name, err)
		}
		if ok {
			r.level = e.Level
			r.floor = time.Now()
			return r, nil
		}
		n, err := conn.Read(r.rbuf)
		r.dec.feed(r.rbuf[:n])
		if err != nil && n == 0 {
			conn.Close()
			if errors.Is(err, io.EOF) {
				err = errors.New("the simulator closed the connection")
			}
			return nil, fmt.Errorf("%w: %s: waiting for the state line: %w", gpio.ErrLine, name, err)
		}
	}
}

// Read returns the level after the last edge WaitEdge returned (or the
// state line's level): edges still in the socket are not looked at.
func (r *remote) Read() (gpio.Level, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return gpio.Low, fmt.Errorf("%w: %s", gpio.ErrClosed, r.name)
	}
	return r.level, nil
}

// Now is the wall clock (never before a time the line gave out).
func (r *remote) Now() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stamp(time.Now())
}

// stamp returns max(t, floor) and raises floor to it. Called with r.mu held.
func (r *remote) stamp(t time.Time) time.Time {
	if t.Before(r.floor) {
		return r.floor
	}
	r.floor = t
	return t
}

func (r *remote) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return r.conn.Close()
}

// aLongTimeAgo is a read deadline that has passed: it unblocks a Read.
var aLongTimeAgo = time.Unix(1, 0)

func (r *remote) WaitEdge(ctx context.Context, deadline time.Time) (gpio.Edge, error) {
	stop := context.AfterFunc(ctx, func() { _ = r.conn.SetReadDeadline(aLongTimeAgo) })
	defer stop()
	polled := false
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return gpio.Edge{}, fmt.Errorf("%w: %s", gpio.ErrClosed, r.name)
		}
		if r.next == nil {
			e, ok, err := r.dec.next()
			if err != nil {
				r.mu.Unlock()
				return gpio.Edge{}, fmt.Errorf("%w: %s: %w", gpio.ErrLine, r.name, err)
			}
			if ok {
				r.next = &e
			}
		}
		now := time.Now()
		// An edge is delivered when its time has come (the simulator
		// sends it a little ahead), before a deadline at or after it.
		if e := r.next; e != nil && !e.Time.After(now) && (deadline.IsZero() || !e.Time.After(deadline)) {
			r.next = nil
			r.level = e.Level
			out := gpio.Edge{Level: e.Level, Time: r.stamp(e.Time)}
			r.mu.Unlock()
			return out, nil
		}
		if err := ctx.Err(); err != nil {
			r.mu.Unlock()
			return gpio.Edge{}, err
		}
		if !deadline.IsZero() && !now.Before(deadline) {
			if r.next == nil && !polled {
				// Edges may wait in the socket (the reader came late):
				// take them before saying that none came by the deadline.
				polled = true
				r.mu.Unlock()
				if err := r.poll(); err != nil {
					return gpio.Edge{}, err
				}
				continue
			}
			// A reader that comes late is not told a time past an edge
			// that waits, which would then be stamped late.
			at := now
			if r.next != nil && r.next.Time.Before(at) {
				at = r.next.Time
			}
			e := gpio.Edge{Level: r.level, Time: r.stamp(at)}
			r.mu.Unlock()
			return e, fmt.Errorf("gpiosim: %s: no edge by %s: %w", r.name, deadline.Format(time.RFC3339Nano), os.ErrDeadlineExceeded)
		}
		wake := deadline // zero: until data comes
		if e := r.next; e != nil && (wake.IsZero() || e.Time.Before(wake)) {
			wake = e.Time
		}
		r.mu.Unlock()
		// The read deadline is set before ctx is checked again, so a
		// cancellation after the check always unblocks the Read. Data
		// that comes while an edge waits for its time is buffered.
		if err := r.conn.SetReadDeadline(wake); err != nil {
			return gpio.Edge{}, r.readErr(err)
		}
		if err := ctx.Err(); err != nil {
			return gpio.Edge{}, err
		}
		n, err := r.conn.Read(r.rbuf)
		r.mu.Lock()
		r.dec.feed(r.rbuf[:n])
		buffered := len(r.dec.buf)
		r.mu.Unlock()
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return gpio.Edge{}, r.readErr(err)
		}
		if buffered > maxRemoteBuffer {
			return gpio.Edge{}, fmt.Errorf("%w: %s: %w: %d bytes of edges ahead of time (at most %d)", gpio.ErrLine, r.name, ErrProtocol, buffered, maxRemoteBuffer)
		}
	}
}

// poll takes what the socket holds now, without waiting.
func (r *remote) poll() error {
	sc, ok := r.conn.(syscall.Conn)
	if !ok {
		return fmt.Errorf("%w: %s: connection has no file descriptor", gpio.ErrLine, r.name)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return r.readErr(err)
	}
	// A passed read deadline would fail the attempt before it is made.
	if err := r.conn.SetReadDeadline(time.Time{}); err != nil {
		return r.readErr(err)
	}
	for {
		var n int
		var rerr error
		err := raw.Read(func(fd uintptr) bool {
			n, rerr = syscall.Read(int(fd), r.rbuf)
			return true // one attempt: never wait
		})
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil // ctx ended meanwhile (WaitEdge's AfterFunc)
		case err != nil:
			return r.readErr(err)
		case errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EINTR):
			return nil
		case rerr != nil:
			return r.readErr(rerr)
		case n == 0:
			return r.readErr(io.EOF)
		}
		r.mu.Lock()
		r.dec.feed(r.rbuf[:n])
		buffered := len(r.dec.buf)
		r.mu.Unlock()
		if n < len(r.rbuf) {
			return nil
		}
		if buffered > maxRemoteBuffer {
			return fmt.Errorf("%w: %s: %w: %d bytes of edges ahead of time (at most %d)", gpio.ErrLine, r.name, ErrProtocol, buffered, maxRemoteBuffer)
		}
	}
}

// maxRemoteBuffer bounds the bytes received ahead of their edges' time.
const maxRemoteBuffer = 1 << 20

// readErr maps a connection error to a line error (or gpio.ErrClosed after
// Close).
func (r *remote) readErr(err error) error {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("%w: %s", gpio.ErrClosed, r.name)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: %s: the simulator closed the connection", gpio.ErrLine, r.name)
	}
	return fmt.Errorf("%w: %s: %w", gpio.ErrLine, r.name, err)
}
