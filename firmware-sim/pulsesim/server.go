package pulsesim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/townlink/townlink/hardware/gpio"
)

// ErrServe reports a socket that cannot be served.
var ErrServe = errors.New("pulsesim: serve")

// DefaultLead is how long before its time an edge is sent: the reader
// (hardware/gpiosim.Dial) holds it until its time, so the simulator's
// timer latency does not reorder an edge and a reader's deadline. It is
// generous: on a loaded machine the simulator's timers run hundreds of
// milliseconds late, and an edge that arrives after the reader gave out a
// later time is stamped late (and a short pulse is lost to debouncing).
const DefaultLead = time.Second

// ServerConfig configures a Server. The zero value is usable.
type ServerConfig struct {
	// Level is the line's level before the first edge.
	Level gpio.Level
	// Lead: edges are sent this long before their time. 0 means
	// DefaultLead; negative means at their time.
	Lead time.Duration
	// Logger receives client and play errors; nil discards.
	Logger *slog.Logger
}

// ClientBuffer is the number of messages queued for one client; a client
// that falls this far behind is disconnected (it connects again and gets
// the state line, as a reader that lost events would).
const ClientBuffer = 4096

// maxSocketPath is the longest Unix socket path Linux accepts
// (sizeof(sun_path) - 1).
const maxSocketPath = 107

// Server is one simulated input line served on a Unix-domain socket: the
// other end of hardware/gpiosim.Dial (see that package's doc for the
// protocol). Serve plays an edge sequence in real time, as the wire
// would: each edge is sent, with its own timestamp, to every connected
// client Lead before its time on the wall clock, and the reader delivers
// it when its time has come. A client that connects gets the state line
// (the level now and when the line took it) and then the edges from there
// on; edges while nobody is connected are not kept. Any number of clients
// may connect, and reconnect, at any time.
type Server struct {
	path string
	ln   *net.UnixListener
	log  *slog.Logger
	lead time.Duration

	mu      sync.Mutex
	level   gpio.Level  // the level now (after the last edge due)
	since   time.Time   // time of the last edge due (or of Listen)
	ahead   []gpio.Edge // edges sent whose time had not come, in order
	tail    gpio.Level  // level after the last edge sent
	last    time.Time   // time of the last edge sent
	clients map[*client]bool
	played  int
	accepts int
	drops   int
	serving bool
}

type client struct {
	conn net.Conn
	ch   chan []byte // messages; closed when the client is dropped
}

// ServerStats counts what a Server did.
type ServerStats struct {
	Edges    int        // edges played
	Accepted int        // connections accepted
	Clients  int        // clients connected now
	Dropped  int        // clients dropped because they fell behind
	Level    gpio.Level // the line's level now
}

// Listen binds the socket at path, replacing a stale socket left there
// (never another kind of file). It does not accept yet: Serve does.
func Listen(path string, c ServerConfig) (*Server, error) {
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.Lead == 0:
		c.Lead = DefaultLead
	case c.Lead < 0:
		c.Lead = 0
	}
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("%w: socket path %s is %d bytes, Unix sockets allow %d", ErrServe, path, len(path), maxSocketPath)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("%w: %s exists and is not a socket: not replacing it", ErrServe, path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("%w: remove stale socket: %w", ErrServe, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrServe, err)
	}
	ln.SetUnlinkOnClose(true)
	now := time.Now()
	return &Server{path: path, ln: ln, log: log.With("socket", path), lead: c.Lead,
		level: c.Level, since: now, tail: c.Level, last: now, clients: map[*client]bool{}}, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Stats returns the counters.
func (s *Server) Stats() ServerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dueLocked(time.Now())
	return ServerStats{Edges: s.played, Accepted: s.accepts, Clients: len(s.clients), Dropped: s.drops, Level: s.level}
}

// dueLocked applies the edges sent ahead whose time has come by now.
// Called with s.mu held.
func (s *Server) dueLocked(now time.Time) {
	n := 0
	for n < len(s.ahead) && !s.ahead[n].Time.After(now) {
		s.level, s.since = s.ahead[n].Level, s.ahead[n].Time
		n++
	}
	s.ahead = append(s.ahead[:0], s.ahead[n:]...)
}

// Close closes the listener and removes the socket; use it when Serve is
// not called (Serve closes them when it returns).
func (s *Server) Close() error { return s.ln.Close() }

// Serve accepts clients and plays edges until ctx ends; then it
// disconnects the clients, removes the socket and returns nil. When the
// sequence ends the line stays at its last level and clients are still
// served. An edge that does not change the level or goes back in time
// stops Serve with an error. Serve may be called once.
func (s *Server) Serve(ctx context.Context, edges iter.Seq[gpio.Edge]) error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return fmt.Errorf("%w: %s: Serve called twice", ErrServe, s.path)
	}
	s.serving = true
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		_ = s.ln.Close()
		s.mu.Lock()
		for c := range s.clients {
			s.dropLocked(c)
		}
		s.mu.Unlock()
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.accept(ctx, &wg)
	}()
	if err := s.play(ctx, edges); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// play sends each edge when its time has come.
func (s *Server) play(ctx context.Context, edges iter.Seq[gpio.Edge]) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for e := range edges {
		if wait := time.Until(e.Time) - s.lead; wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return nil
		}
		if err := s.edge(e); err != nil {
			return err
		}
	}
	return nil
}

// edge applies e and sends it to every client.
func (s *Server) edge(e gpio.Edge) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case e.Level == s.tail:
		return fmt.Errorf("%w: %s: edge at %s to %s, but the line is already %s", ErrServe, s.path, e.Time.Format(time.RFC3339Nano), e.Level, s.tail)
	case s.played > 0 && e.Time.Before(s.last):
		return fmt.Errorf("%w: %s: edge at %s is before the previous one at %s", ErrServe, s.path, e.Time.Format(time.RFC3339Nano), s.last.Format(time.RFC3339Nano))
	}
	s.tail, s.last = e.Level, e.Time
	s.ahead = append(s.ahead, e)
	s.dueLocked(time.Now())
	s.played++
	msg := appendMessage(nil, e.Time, e.Level)
	for c := range s.clients {
		select {
		case c.ch <- msg:
		default:
			s.log.Warn("client fell behind; disconnecting it", "buffered", ClientBuffer)
			s.drops++
			s.dropLocked(c)
		}
	}
	return nil
}

// appendMessage is one protocol line, written here independently of
// hardware/gpiosim's AppendMessage so the tests check one against the
// other.
func appendMessage(dst []byte, t time.Time, l gpio.Level) []byte {
	dst = strconv.AppendInt(dst, t.UnixNano(), 10)
	if l {
		return append(dst, " 1\n"...)
	}
	return append(dst, " 0\n"...)
}

// dropLocked disconnects c. Called with s.mu held.
func (s *Server) dropLocked(c *client) {
	if !s.clients[c] {
		return
	}
	delete(s.clients, c)
	close(c.ch)
	_ = c.conn.Close()
}

// accept takes connections until the listener is closed.
func (s *Server) accept(ctx context.Context, wg *sync.WaitGroup) {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("accept", "err", err)
			}
			return
		}
		s.mu.Lock()
		s.dueLocked(time.Now())
		c := &client{conn: conn, ch: make(chan []byte, max(ClientBuffer, len(s.ahead)+1))}
		if ctx.Err() != nil {
			s.mu.Unlock()
			_ = conn.Close()
			return
		}
		// The state line (the level now, never ahead of the clock) and the
		// edges already sent ahead go first, under the lock, so no edge
		// comes between them.
		c.ch <- appendMessage(nil, s.since, s.level)
		for _, e := range s.ahead {
			c.ch <- appendMessage(nil, e.Time, e.Level)
		}
		s.clients[c] = true
		s.accepts++
		s.mu.Unlock()
		s.log.Debug("client connected")
		wg.Add(2)
		go func() {
			defer wg.Done()
			s.write(c)
		}()
		go func() {
			defer wg.Done()
			// Clients send nothing: a read ends when the client hangs up
			// (or is dropped), so a dead client goes at once, not at the
			// next edge.
			_, _ = io.Copy(io.Discard, conn)
			s.mu.Lock()
			s.dropLocked(c)
			s.mu.Unlock()
		}()
	}
}

// write sends c's messages, batching those already queued, until c is
// dropped or a write fails.
func (s *Server) write(c *client) {
	buf := make([]byte, 0, 4096)
	for msg := range c.ch {
		buf = append(buf[:0], msg...)
	more:
		for len(buf) < 64<<10 {
			select {
			case m, ok := <-c.ch:
				if !ok {
					break more
				}
				buf = append(buf, m...)
			default:
				break more
			}
		}
		if _, err := c.conn.Write(buf); err != nil {
			s.mu.Lock()
			s.dropLocked(c)
			s.mu.Unlock()
			s.log.Debug("client gone", "err", err)
			// Drain what is left until dropLocked's close.
			for range c.ch {
			}
			return
		}
	}
}
