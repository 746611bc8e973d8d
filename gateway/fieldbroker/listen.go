package fieldbroker

import (
	"crypto/tls"
	"fmt"
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
// mochi's own listeners have flaws for a broker that must hold against
// anyone on the LAN and close cleanly:
//   - mochi allocates a client (a 4096-slot write queue, buffers, two
//     goroutines) for every accepted socket and then a buffer of whatever
//     size the CONNECT's fixed header announces (clients.go ReadPacket), all
//     before the password is checked. Here a connection must first get a
//     slot in the gate (MaxPending, MaxPendingPerAddr) and send a CONNECT
//     of at most MaxConnectSize bytes, read by this package; only then does
//     mochi see it, with the CONNECT replayed (conn.Read).
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
	id         string
	raw        net.Listener
	tls        *tls.Config // nil: plain TCP
	cwg        *sync.WaitGroup
	log        *slog.Logger
	done       chan struct{} // closed when Serve returns
	gate       *gate
	maxConnect int
	dropped    func(addr string, why error) // a connection closed before login
	recovered  func(c *conn, err error)     // mochi panicked serving c

	mu      sync.Mutex
	closed  bool
	serving bool
	conns   map[*conn]struct{}
}

var _ listeners.Listener = (*listener)(nil)

// conn is what mochi reads: the TLS or TCP connection, with the CONNECT
// packet this package already read replayed first.
type conn struct {
	net.Conn          // *tls.Conn or the TCP connection
	raw      net.Conn // the TCP connection
	l        *listener
	addr     string      // source address (gate key)
	pre      []byte      // unread part of the CONNECT packet
	attached atomic.Bool // mochi has a session for it: its Close disconnects it

	client    atomic.Pointer[mqtt.Client] // the session's client, once logged in
	pending   atomic.Bool                 // holds a gate slot
	closeOnce sync.Once
}

func listen(id, addr string, cfg *tls.Config, clientsWg *sync.WaitGroup) (*listener, error) {
	raw, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &listener{
		id: id, raw: raw, tls: cfg, cwg: clientsWg,
		log:        slog.New(slog.DiscardHandler),
		done:       make(chan struct{}),
		conns:      make(map[*conn]struct{}),
		gate:       newGate(DefaultMaxPending, DefaultMaxPendingPerAddr),
		maxConnect: DefaultMaxConnectSize,
		dropped:    func(string, error) {},
		recovered:  func(c *conn, _ error) { _ = c.Close() },
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
		addr := addrOf(c.RemoteAddr())
		if !l.gate.enter(addr) {
			l.dropped(addr, errTooManyPending) // counted before the peer sees the close
			_ = c.Close()
			continue
		}
		_ = c.SetDeadline(time.Now().Add(connectTimeout))
		tc := &conn{Conn: c, raw: c, l: l, addr: addr}
		tc.pending.Store(true)
		if l.tls != nil {
			tc.Conn = tls.Server(c, l.tls)
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = tc.Close()
			return
		}
		l.conns[tc] = struct{}{}
		l.cwg.Add(1)
		l.mu.Unlock()
		go l.serveConn(tc, establish)
	}
}

// serveConn reads the CONNECT packet and hands the connection to mochi.
func (l *listener) serveConn(tc *conn, establish listeners.EstablishFn) {
	defer l.cwg.Done()
	pre, err := readConnect(tc.Conn, l.maxConnect)
	if err != nil {
		l.mu.Lock()
		closing := l.closed
		l.mu.Unlock()
		if !closing { // not dropped by shutdown
			l.dropped(tc.addr, err)
		}
		_ = tc.Close()
		return
	}
	tc.pre = pre
	if err := l.establish(tc, establish); err != nil {
		l.log.Debug("fieldbroker: connection ended", "listener", l.id, "remote", tc.raw.RemoteAddr(), "error", err)
	}
	_ = tc.Close() // mochi has closed it; releases the gate slot in any case
}

// establish hands the connection to mochi, which serves it on this
// goroutine until it ends (server.go EstablishConnection → attachClient →
// cl.Read). mochi does not recover a panic there — its packet decoders
// have index bugs (mochi-mqtt/server#501: an MQTT 5 SUBSCRIBE without its
// options byte) — and a panic on any goroutine ends the whole gateway: it
// is recovered here, and that connection alone is closed (l.recovered).
func (l *listener) establish(tc *conn, establish listeners.EstablishFn) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: %v", errDecodePanic, v)
			l.recovered(tc, err)
		}
	}()
	return establish(l.id, tc)
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
		_ = c.raw.Close() // unblocks a TLS handshake or a read in progress
		_ = c.Close()
	}
}

// Read returns the CONNECT packet read by serveConn first. Only mochi's
// read goroutine calls it.
func (c *conn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		if len(c.pre) == 0 {
			c.pre = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		c.loggedIn()
		err = c.Conn.Close()
	})
	return err
}

// loggedIn gives the connection's gate slot back (once).
func (c *conn) loggedIn() {
	if c.pending.CompareAndSwap(true, false) {
		c.l.gate.leave(c.addr)
	}
}

// CloseWrite half-closes the connection (dropConnection): TLS sends its
// close_notify, TCP its FIN.
func (c *conn) CloseWrite() error {
	if hc, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return hc.CloseWrite()
	}
	return net.ErrClosed
}

// connOf is the package's connection under a mochi client (nil for the
// inline client).
func connOf(cl *mqtt.Client) *conn {
	c, _ := cl.Net.Conn.(*conn)
	return c
}

// markAttached records that mochi holds a session for the client's
// connection (called after mochi added it to its client list).
func markAttached(cl *mqtt.Client) {
	if c := connOf(cl); c != nil {
		c.attached.Store(true)
		c.client.Store(cl)
	}
}
