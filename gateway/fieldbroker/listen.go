package fieldbroker

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// connectTimeout bounds the time from accept to a complete CONNECT (and
// the TLS handshake). mochi sets no read deadline before CONNECT
// (server.go:413 reads it; the first refreshDeadline is at server.go:442),
// so a silent socket would hold a goroutine forever, and mochi's Close
// would wait for it forever (listeners.go:134 ClientsWg.Wait).
const connectTimeout = 30 * time.Second

// listener tracks accepted connections so Close can drop those that have
// no mochi session yet (mochi's Close only disconnects known clients).
type listener struct {
	net.Listener
	mu     sync.Mutex
	closed bool
	conns  map[*conn]struct{}
}

type conn struct {
	net.Conn
	l        *listener
	attached atomic.Bool // mochi has a session for it: its Close disconnects it
}

func listen(addr string, cfg *tls.Config) (*listener, net.Listener, error) {
	raw, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	l := &listener{Listener: raw, conns: make(map[*conn]struct{})}
	if cfg == nil {
		return l, l, nil
	}
	return l, tls.NewListener(l, cfg), nil
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(connectTimeout))
	tc := &conn{Conn: c, l: l}
	l.mu.Lock()
	closed := l.closed
	if !closed {
		l.conns[tc] = struct{}{}
	}
	l.mu.Unlock()
	if closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	return tc, nil
}

func (c *conn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// CloseWrite half-closes a TCP connection (dropConnection).
func (c *conn) CloseWrite() error {
	if hc, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return hc.CloseWrite()
	}
	return net.ErrClosed
}

// shutdown stops accepting and closes every connection without a session.
func (l *listener) shutdown() {
	l.mu.Lock()
	l.closed = true
	var drop []*conn
	for c := range l.conns {
		if !c.attached.Load() {
			drop = append(drop, c)
		}
	}
	l.mu.Unlock()
	_ = l.Listener.Close()
	for _, c := range drop {
		_ = c.Close()
	}
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
