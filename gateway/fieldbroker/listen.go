package fieldbroker

import (
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// connectTimeout bounds the time from accept to a complete CONNECT (and
// the TLS handshake). mochi sets no read deadline before CONNECT
// (server.go:413 reads it; the first refreshDeadline is at server.go:442),
// so a silent socket would hold a goroutine forever, and mochi's Close
// would wait for it forever (listeners.go:134 ClientsWg.Wait).
const connectTimeout = 30 * time.Second

// listener is a mochi listeners.Listener that owns its accept loop, because
// mochi's own listeners have two flaws for a broker that must close
// cleanly:
//   - mochi's Close disconnects only clients that completed CONNECT and then
//     waits for every connection goroutine: a socket that never sent CONNECT
//     blocks it (no deadline before CONNECT). shutdown drops such sockets.
//   - attachClient calls ClientsWg.Add(1) inside the connection goroutine
//     (server.go:407-408), racing with Close's ClientsWg.Wait for a
//     connection accepted just before Close (the race detector reports it).
//     Here the accept loop adds to ClientsWg before it starts the goroutine,
//     under the same lock shutdown takes, so the counter is never 0 while a
//     connection is being attached.
type listener struct {
	id   string
	raw  net.Listener
	tls  *tls.Config // nil: plain TCP
	cwg  *sync.WaitGroup
	log  *slog.Logger
	done chan struct{} // closed when Serve returns

	mu      sync.Mutex
	closed  bool
	serving bool
	conns   map[*conn]struct{}
}

var _ listeners.Listener = (*listener)(nil)

type conn struct {
	net.Conn
	l        *listener
	attached atomic.Bool // mochi has a session for it: its Close disconnects it
}

func listen(id, addr string, cfg *tls.Config, clientsWg *sync.WaitGroup) (*listener, error) {
	raw, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &listener{
		id: id, raw: raw, tls: cfg, cwg: clientsWg,
		log:   slog.New(slog.DiscardHandler),
		done:  make(chan struct{}),
		conns: make(map[*conn]struct{}),
	}, nil
}

func (l *listener) ID() string      { return l.id }
func (l *listener) Address() string { return l.raw.Addr().String() }
func (l *listener) Protocol() string {
	if l.tls != nil {
		return "tls"
	}
	return "tcp"
}

func (l *listener) Init(log *slog.Logger) error {
	if log != nil {
		l.log = log
	}
	return nil
}

// Serve accepts until shutdown. mochi runs it on its own goroutine.
func (l *listener) Serve(establish listeners.EstablishFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.serving = true
	l.mu.Unlock()
	defer close(l.done)
	for {
		c, err := l.raw.Accept()
		if err != nil {
			return // closed by shutdown
		}
		_ = c.SetDeadline(time.Now().Add(connectTimeout))
		tc := &conn{Conn: c, l: l}
		var nc net.Conn = tc
		if l.tls != nil {
			nc = tls.Server(tc, l.tls)
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = c.Close()
			return
		}
		l.conns[tc] = struct{}{}
		l.cwg.Add(1)
		l.mu.Unlock()
		go func() {
			defer l.cwg.Done()
			if err := establish(l.id, nc); err != nil {
				l.log.Debug("fieldbroker: connection ended", "listener", l.id, "remote", c.RemoteAddr(), "error", err)
			}
		}()
	}
}

// Close is called by mochi's Server.Close: disconnect this listener's
// clients, then stop.
func (l *listener) Close(closeClients listeners.CloseFn) {
	closeClients(l.id)
	l.shutdown()
}

// shutdown stops accepting, waits for the accept loop to end and closes
// every connection that mochi holds no session for. Idempotent.
func (l *listener) shutdown() {
	l.mu.Lock()
	l.closed = true
	serving := l.serving
	var drop []*conn
	for c := range l.conns {
		if !c.attached.Load() {
			drop = append(drop, c)
		}
	}
	l.mu.Unlock()
	_ = l.raw.Close()
	if serving {
		<-l.done
	}
	for _, c := range drop {
		_ = c.Close()
	}
}

func (c *conn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// CloseWrite half-closes the TCP connection (dropConnection).
func (c *conn) CloseWrite() error {
	if hc, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return hc.CloseWrite()
	}
	return net.ErrClosed
}

// markAttached records that mochi holds a session for the client's
// connection (called after mochi added it to its client list).
func markAttached(cl *mqtt.Client) {
	nc := cl.Net.Conn
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if c, ok := nc.(*conn); ok {
		c.attached.Store(true)
	}
}
