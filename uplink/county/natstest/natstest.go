// Package natstest builds a pinned nats-server from the Go module proxy
// (into a cache directory, never into the project's go.mod) and runs a
// cluster of it on loopback: JetStream and the MQTT listener on every node,
// for tests and for the load harness. Nodes can be killed with SIGKILL and
// restarted on the same ports and store.
package natstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Version is the nats-server release the harness builds and runs.
const Version = "v2.15.3"

// ErrNATS reports a server that could not be built, started or reached.
var ErrNATS = errors.New("natstest: nats-server")

// Build returns the path of nats-server Version, building it with
// `go install github.com/nats-io/nats-server/v2@Version` into
// cacheDir/nats-server-<Version>/ when it is not there yet. cacheDir ""
// means os.UserCacheDir()/townlink.
func Build(cacheDir string) (string, error) {
	if cacheDir == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrNATS, err)
		}
		cacheDir = filepath.Join(d, "townlink")
	}
	dir := filepath.Join(cacheDir, "nats-server-"+Version)
	bin := filepath.Join(dir, "nats-server")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("%w: %w", ErrNATS, err)
	}
	work, err := os.MkdirTemp("", "natsbuild")
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNATS, err)
	}
	defer os.RemoveAll(work)
	cmd := exec.Command("go", "install", "github.com/nats-io/nats-server/v2@"+Version)
	cmd.Dir = work // outside any module: the project's go.mod is not touched
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w: go install nats-server@%s: %w\n%s", ErrNATS, Version, err, out)
	}
	return bin, nil
}

// Node is one server of a Cluster.
type Node struct {
	Name                              string
	ClientPort, ClusterPort, MQTTPort int
	conf, logf                        string
	bin                               string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// ClientURL is the node's NATS URL.
func (n *Node) ClientURL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.ClientPort) }

// MQTTAddr is the node's MQTT listener, host:port.
func (n *Node) MQTTAddr() string { return fmt.Sprintf("127.0.0.1:%d", n.MQTTPort) }

// Cluster is a set of nodes routed to each other.
type Cluster struct {
	Nodes []*Node
}

// Start builds (or finds) nats-server and starts an n-node cluster in
// t.TempDir(); it is killed at cleanup.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	bin, err := Build("")
	if err != nil {
		t.Fatal(err)
	}
	c, err := StartDir(t.TempDir(), bin, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// StartDir writes the nodes' configurations under dir and starts them.
func StartDir(dir, bin string, n int) (*Cluster, error) {
	ports, err := freePorts(3 * n)
	if err != nil {
		return nil, err
	}
	c := &Cluster{}
	var routes []string
	for i := range n {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[3*i+1]))
	}
	for i := range n {
		nd := &Node{Name: fmt.Sprintf("n%d", i+1), ClientPort: ports[3*i], ClusterPort: ports[3*i+1], MQTTPort: ports[3*i+2], bin: bin}
		nd.conf = filepath.Join(dir, nd.Name+".conf")
		nd.logf = filepath.Join(dir, nd.Name+".log")
		if err := os.WriteFile(nd.conf, []byte(config(nd, filepath.Join(dir, nd.Name), routes)), 0o644); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNATS, err)
		}
		c.Nodes = append(c.Nodes, nd)
	}
	for _, nd := range c.Nodes {
		if err := nd.Start(); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// config is one node's configuration: JetStream with its store, the cluster
// routes, and the MQTT listener with its streams replicated on 3 nodes.
func config(n *Node, store string, routes []string) string {
	replicas := min(3, len(routes))
	cluster := "" // a single node is not a cluster (it would wait for routes for ever)
	if len(routes) > 1 {
		cluster = fmt.Sprintf("cluster {\n  name: county\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n", n.ClusterPort, strings.Join(routes, ", "))
	}
	return fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
jetstream {
  store_dir: %q
  max_memory_store: 64MB
  max_file_store: 8GB
}
%smqtt {
  listen: 127.0.0.1:%d
  stream_replicas: %d
  max_ack_pending: 1024
}
`, n.Name, n.ClientPort, store, cluster, n.MQTTPort, replicas)
}

// Start starts the node (again, after Kill: same ports, same store).
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	logf, err := os.OpenFile(n.logf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNATS, err)
	}
	cmd := exec.Command(n.bin, "-c", n.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%w: start %s: %w", ErrNATS, n.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	n.cmd, n.done = cmd, done
	return nil
}

// Kill sends SIGKILL and waits for the process to exit.
func (n *Node) Kill() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Log returns the node's log so far.
func (n *Node) Log() string {
	b, _ := os.ReadFile(n.logf)
	return string(b)
}

// Stop kills every node.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Kill()
	}
}

// ClientURLs are the nodes' NATS URLs.
func (c *Cluster) ClientURLs() []string {
	var u []string
	for _, n := range c.Nodes {
		u = append(u, n.ClientURL())
	}
	return u
}

// MQTTURLs are the nodes' MQTT listeners as tcp:// URLs.
func (c *Cluster) MQTTURLs() []string {
	var u []string
	for _, n := range c.Nodes {
		u = append(u, "tcp://"+n.MQTTAddr())
	}
	return u
}

// Node returns the node called name.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// WaitReady waits until JetStream answers through every node (the meta
// leader is elected) and every MQTT listener accepts connections.
func (c *Cluster) WaitReady(ctx context.Context) error {
	for _, n := range c.Nodes {
		for {
			err := ping(ctx, n)
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w: %s not ready: %w\n%s", ErrNATS, n.Name, err, tail(n.Log()))
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

func ping(ctx context.Context, n *Node) error {
	conn, err := net.DialTimeout("tcp", n.MQTTAddr(), time.Second)
	if err != nil {
		return err
	}
	conn.Close()
	nc, err := nats.Connect(n.ClientURL(), nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(actx)
	return err
}

// StreamLeader returns the node that leads stream.
func (c *Cluster) StreamLeader(ctx context.Context, js jetstream.JetStream, stream string) (*Node, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("%w: stream %s: %w", ErrNATS, stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: stream %s: %w", ErrNATS, stream, err)
	}
	if info.Cluster == nil || c.Node(info.Cluster.Leader) == nil {
		return nil, fmt.Errorf("%w: stream %s has no known leader", ErrNATS, stream)
	}
	return c.Node(info.Cluster.Leader), nil
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

func freePorts(n int) ([]int, error) {
	var ls []io.Closer
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNATS, err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
