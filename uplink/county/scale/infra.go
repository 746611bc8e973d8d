package scale

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/townlink/townlink/uplink/mqttpub"
)

// gate is a TCP relay in front of one broker node: the county's network.
// Closing it cuts every connection and refuses new ones (the outage);
// opening it lets the gateways back in.
type gate struct {
	ln       net.Listener
	upstream string

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func newGate(upstream string) (*gate, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &gate{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}}
	go g.accept()
	return g, nil
}

func (g *gate) url() string { return "tcp://" + g.ln.Addr().String() }

func (g *gate) accept() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		go g.relay(c)
	}
}

func (g *gate) relay(c net.Conn) {
	g.mu.Lock()
	closed := g.closed
	g.mu.Unlock()
	if closed {
		c.Close()
		return
	}
	up, err := net.DialTimeout("tcp", g.upstream, 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	if !g.track(c, up) {
		return
	}
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) { _, _ = io.Copy(dst, src); done <- struct{}{} }
	go cp(up, c)
	go cp(c, up)
	<-done
	c.Close()
	up.Close()
	<-done
	g.mu.Lock()
	delete(g.conns, c)
	delete(g.conns, up)
	g.mu.Unlock()
}

func (g *gate) track(c, up net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		c.Close()
		up.Close()
		return false
	}
	g.conns[c], g.conns[up] = struct{}{}, struct{}{}
	return true
}

// set opens or closes the gate; closing cuts every connection at once.
func (g *gate) set(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = !open
	if open {
		return
	}
	for c := range g.conns {
		c.Close()
	}
}

func (g *gate) close() {
	g.set(false)
	g.ln.Close()
}

// worker is one townlink-county ingest process.
type worker struct {
	name string
	args []string
	bin  string
	logf string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (w *worker) start() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	f, err := os.OpenFile(w.logf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(w.bin, w.args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("worker %s: %w", w.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	w.cmd, w.done = cmd, done
	return nil
}

// kill sends SIGKILL and waits for the process.
func (w *worker) kill() {
	w.mu.Lock()
	cmd, done := w.cmd, w.done
	w.cmd = nil
	w.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

func writeKeys(path string, n int) error {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "gw-%03d %s\n", i, formatKey(gatewayKey(i)))
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// waitConsumer waits until the ingest workers created the durable consumer:
// before it exists, $MQTT_msgs (interest retention) keeps nothing.
func waitConsumer(ctx context.Context, js jetstream.JetStream, stream, durable string) error {
	for {
		if _, err := js.Consumer(ctx, stream, durable); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("consumer %s never appeared: %w", durable, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// rawQoS1 measures the cluster's own QoS 1 rate through its MQTT listeners:
// clients publishing 200-byte messages, each with a window of outstanding
// publishes, into the stream (a durable consumer "bench" makes them stored,
// as the gateways' are), for d. It returns messages PUBACKed per second.
func rawQoS1(ctx context.Context, js jetstream.JetStream, urls []string, clients, window int, d time.Duration) (float64, error) {
	s, err := js.Stream(ctx, "$MQTT_msgs")
	if err != nil {
		return 0, err
	}
	if _, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "bench", FilterSubject: "$MQTT.msgs.bench.>", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		return 0, err
	}
	defer func() { _ = s.DeleteConsumer(context.Background(), "bench") }()
	payload := make([]byte, 200)
	var pubs []*mqttpub.Client
	defer func() {
		for _, c := range pubs {
			c.Close()
		}
	}()
	for i := range clients {
		c, err := mqttpub.New(mqttpub.Options{Brokers: []string{urls[i%len(urls)]}, ClientID: fmt.Sprintf("bench-%d", i)})
		if err != nil {
			return 0, err
		}
		c.Start(ctx)
		pubs = append(pubs, c)
	}
	for _, c := range pubs {
		for !c.Connected() && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
	var n atomic.Int64
	bctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range pubs {
		for w := range window {
			wg.Add(1)
			go func() {
				defer wg.Done()
				topic := fmt.Sprintf("bench/%d/%d", i, w)
				for bctx.Err() == nil {
					if c.Publish(bctx, topic, payload) == nil {
						n.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}

func natsJS(urls []string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

func logPath(dir, name string) string { return filepath.Join(dir, name+".log") }
