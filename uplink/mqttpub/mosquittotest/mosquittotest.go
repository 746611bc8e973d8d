// Package mosquittotest runs a real mosquitto broker for tests: a generated
// config in t.TempDir(), a free loopback port, readiness by connecting to it,
// and t.Cleanup to kill it. Stop and Restart keep the port, for outage tests.
//
// A missing mosquitto binary is a test failure (never a skip): install it with
// apt-get install mosquitto.
package mosquittotest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Broker is one mosquitto process listening on 127.0.0.1.
type Broker struct {
	Addr string // 127.0.0.1:port
	URL  string // tcp://127.0.0.1:port, or ssl://127.0.0.1:port with WithTLS

	dir  string
	bin  string
	conf string
	log  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

type config struct {
	persistence    bool
	allowAnonymous bool
	users          map[string]string
	tls            *tlsFiles
	maxInflight    int
	maxQueued      int
	extra          []string
}

type tlsFiles struct {
	ca, cert, key []byte
	requireCert   bool
}

// Option configures a Broker.
type Option func(*config)

// WithPersistence turns mosquitto's persistence on (saved on every change, so
// retained messages and sessions survive Stop/Restart as far as mosquitto
// manages to write them before SIGKILL).
func WithPersistence() Option { return func(c *config) { c.persistence = true } }

// WithAllowAnonymous sets allow_anonymous (default true).
func WithAllowAnonymous(allow bool) Option { return func(c *config) { c.allowAnonymous = allow } }

// WithUser adds a username/password (a password_file made with
// mosquitto_passwd) and turns anonymous access off.
func WithUser(name, password string) Option {
	return func(c *config) {
		if c.users == nil {
			c.users = map[string]string{}
		}
		c.users[name] = password
		c.allowAnonymous = false
	}
}

// WithTLS makes the listener TLS-only with the given PEM CA, server
// certificate and key; requireCert sets require_certificate (mutual TLS).
// The Broker's URL then uses the ssl:// scheme.
func WithTLS(caPEM, certPEM, keyPEM []byte, requireCert bool) Option {
	return func(c *config) { c.tls = &tlsFiles{ca: caPEM, cert: certPEM, key: keyPEM, requireCert: requireCert} }
}

// WithLimits raises max_inflight_messages and max_queued_messages (0 means
// unlimited for both in mosquitto). Use it when a subscriber must receive a
// burst without mosquitto dropping QoS 1 messages.
func WithLimits(maxInflight, maxQueued int) Option {
	return func(c *config) { c.maxInflight, c.maxQueued = maxInflight, maxQueued }
}

// WithConfigLine appends a raw line to mosquitto.conf.
func WithConfigLine(line string) Option { return func(c *config) { c.extra = append(c.extra, line) } }

// Binary returns the path of the mosquitto binary, or an error saying how to
// install it.
func Binary() (string, error) {
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto", nil
	}
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	return "", errors.New("mosquitto not installed: apt-get install mosquitto")
}

// Start runs mosquitto on a free loopback port and waits until it accepts
// connections. It registers t.Cleanup to kill it.
func Start(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	cfg := config{allowAnonymous: true}
	for _, o := range opts {
		o(&cfg)
	}
	dir := t.TempDir()
	b := &Broker{dir: dir, bin: bin, conf: filepath.Join(dir, "mosquitto.conf"), log: filepath.Join(dir, "mosquitto.log")}
	t.Cleanup(b.Stop)

	// The port is found by listening on :0 and closing; another process may
	// take it in between, so try a few ports.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("mosquittotest: free port: %v", err)
		}
		if err := b.writeConfig(port, &cfg); err != nil {
			t.Fatalf("mosquittotest: %v", err)
		}
		b.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		scheme := "tcp"
		if cfg.tls != nil {
			scheme = "ssl"
		}
		b.URL = scheme + "://" + b.Addr
		if lastErr = b.start(); lastErr == nil {
			return b
		}
	}
	t.Fatalf("mosquittotest: %v", lastErr)
	return nil
}

// Stop kills mosquitto with SIGKILL (no clean shutdown, like a crash or a
// power cut) and waits for it to exit. The port is kept for Restart.
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	<-b.done
	b.cmd, b.done = nil, nil
}

// Restart starts mosquitto again on the same port with the same config.
func (b *Broker) Restart(t testing.TB) {
	t.Helper()
	b.Stop()
	var err error
	// The old listening socket is gone once the process has exited; retry
	// briefly in case the kernel has not released the port yet.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err = b.start(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquittotest: restart on %s: %v", b.Addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Running reports whether the mosquitto process is running.
func (b *Broker) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cmd != nil
}

// Dir is the broker's directory: config, log, persistence (mosquitto.db).
func (b *Broker) Dir() string { return b.dir }

// Log returns what mosquitto has logged so far (for failure messages).
func (b *Broker) Log() string {
	data, err := os.ReadFile(b.log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(data)
}

func (b *Broker) start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return errors.New("already running")
	}
	logf, err := os.OpenFile(b.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(b.bin, "-c", b.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", b.bin, err)
	}
	done := make(chan struct{})
	go func() { // owned by the Broker: Stop (or the exit below) waits for it
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()

	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("mosquitto exited at start on %s; log:\n%s", b.Addr, tail(b.Log()))
		default:
		}
		c, err := net.DialTimeout("tcp", b.Addr, time.Second)
		if err == nil {
			c.Close()
			b.cmd, b.done = cmd, done
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("mosquitto on %s not accepting connections after 15s: %v; log:\n%s", b.Addr, err, tail(b.Log()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *Broker) writeConfig(port int, c *config) error {
	var w bytes.Buffer
	u, err := user.Current()
	if err == nil && u.Username != "" {
		// As root mosquitto drops privileges to "mosquitto", which could not
		// read the files in t.TempDir(); as another user this line is ignored.
		fmt.Fprintf(&w, "user %s\n", u.Username)
	}
	fmt.Fprintf(&w, "listener %d 127.0.0.1\n", port)
	fmt.Fprintf(&w, "allow_anonymous %t\n", c.allowAnonymous)
	fmt.Fprintf(&w, "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\nconnection_messages true\nlog_timestamp_format %%H:%%M:%%S\n")
	if c.persistence {
		fmt.Fprintf(&w, "persistence true\npersistence_location %s/\nautosave_interval 1\nautosave_on_changes true\n", b.dir)
	} else {
		fmt.Fprintf(&w, "persistence false\n")
	}
	if c.maxInflight != 0 || c.maxQueued != 0 {
		fmt.Fprintf(&w, "max_inflight_messages %d\nmax_queued_messages %d\n", c.maxInflight, c.maxQueued)
	}
	if len(c.users) > 0 {
		pw := filepath.Join(b.dir, "passwd")
		if err := os.WriteFile(pw, nil, 0o600); err != nil {
			return err
		}
		for name, pass := range c.users {
			out, err := exec.Command("mosquitto_passwd", "-b", pw, name, pass).CombinedOutput()
			if err != nil {
				return fmt.Errorf("mosquitto_passwd (apt-get install mosquitto): %v: %s", err, out)
			}
		}
		fmt.Fprintf(&w, "password_file %s\n", pw)
	}
	if c.tls != nil {
		files := map[string][]byte{"ca.pem": c.tls.ca, "server.pem": c.tls.cert, "server-key.pem": c.tls.key}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(b.dir, name), data, 0o600); err != nil {
				return err
			}
		}
		fmt.Fprintf(&w, "cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate %t\n",
			filepath.Join(b.dir, "ca.pem"), filepath.Join(b.dir, "server.pem"), filepath.Join(b.dir, "server-key.pem"), c.tls.requireCert)
	}
	for _, l := range c.extra {
		fmt.Fprintln(&w, l)
	}
	return os.WriteFile(b.conf, w.Bytes(), 0o644)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}
