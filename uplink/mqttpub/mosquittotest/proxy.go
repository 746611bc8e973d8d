package mosquittotest

import (
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP relay between clients and a broker, for cutting a client's
// connection uncleanly (so the broker publishes its will) and for holding
// back the broker's replies (PUBACKs) to a client.
type Proxy struct {
	Addr string // 127.0.0.1:port to connect to
	URL  string // tcp://Addr

	ln       net.Listener
	upstream string

	mu    sync.Mutex
	cond  *sync.Cond
	held  bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy relays 127.0.0.1:<free port> to upstream (host:port). It is
// closed by t.Cleanup.
func NewProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mosquittotest: proxy listen: %v", err)
	}
	p := &Proxy{Addr: ln.Addr().String(), ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}}
	p.URL = "tcp://" + p.Addr
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept() // owned by p: Close waits for it
	t.Cleanup(p.Close)
	return p
}

// Hold stops relaying bytes from the broker to clients (they stay buffered in
// the proxy) until Release or Cut.
func (p *Proxy) Hold() {
	p.mu.Lock()
	p.held = true
	p.mu.Unlock()
}

// Release resumes relaying from the broker to clients.
func (p *Proxy) Release() {
	p.mu.Lock()
	p.held = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// Cut closes every relayed connection at once, on both sides, without any
// MQTT DISCONNECT: to the broker it looks like a dead network. New
// connections are still accepted. Held data is dropped.
func (p *Proxy) Cut() {
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.held = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// Close stops accepting, cuts every connection and waits for the relays.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[u] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.relay(u, c, false) // client → broker
		go p.relay(c, u, true)  // broker → client, subject to Hold
	}
}

func (p *Proxy) relay(dst, src net.Conn, holdable bool) {
	defer p.wg.Done()
	defer func() {
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if holdable && !p.waitReleased(src) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // io.EOF or closed by Cut
			return
		}
	}
}

// waitReleased blocks while held; false if conn was cut meanwhile.
func (p *Proxy) waitReleased(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.held {
		p.cond.Wait()
	}
	_, alive := p.conns[c]
	return alive
}
