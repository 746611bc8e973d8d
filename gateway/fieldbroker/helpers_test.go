package fieldbroker_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/townlink/townlink/gateway/fieldbroker"
)

// wait bounds every wait in these tests: generous, only to avoid hangs.
const wait = 20 * time.Second

var testDevices = []fieldbroker.Device{
	{ID: "cam-01", Username: "u-cam-01", Password: []byte("pw-cam-01")},
	{ID: "cam-02", Username: "u-cam-02", Password: []byte("pw-cam-02")},
	{ID: "kiosk-1", Username: "u-kiosk-1", Password: []byte("pw-kiosk-1")},
}

// call is one Handle call.
type call struct {
	Device, Event, Payload string
	Nil                    bool // payload was nil
}

// recorder is a Handler that records calls; decide (if set) chooses the
// result of each call before it is recorded as accepted.
type recorder struct {
	mu       sync.Mutex
	calls    []call
	accepted []call
	changed  chan struct{}                                  // closed and replaced on every call
	decide   func(ctx context.Context, c call, n int) error // n: calls so far with this device+payload
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) handle(ctx context.Context, dev, ev string, payload []byte) error {
	c := call{Device: dev, Event: ev, Payload: string(payload), Nil: payload == nil}
	r.mu.Lock()
	n := 0
	for _, p := range r.calls {
		if p.Device == c.Device && p.Event == c.Event && p.Payload == c.Payload {
			n++
		}
	}
	r.calls = append(r.calls, c)
	decide := r.decide
	r.mu.Unlock()
	var err error
	if decide != nil {
		err = decide(ctx, c, n)
	}
	r.mu.Lock()
	if err == nil {
		r.accepted = append(r.accepted, c)
	}
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	return err
}

// waitFor waits until cond (called under the lock) holds.
func (r *recorder) waitFor(t *testing.T, what string, cond func(calls, accepted []call) bool) {
	t.Helper()
	deadline := time.After(wait)
	for {
		r.mu.Lock()
		ok := cond(r.calls, r.accepted)
		ch := r.changed
		n := len(r.calls)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s (%d handler calls so far)", wait, what, n)
		}
	}
}

func (r *recorder) snapshot() (calls, accepted []call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...), append([]call(nil), r.accepted...)
}

func count(cs []call, match func(call) bool) int {
	n := 0
	for _, c := range cs {
		if match(c) {
			n++
		}
	}
	return n
}

func startBroker(t *testing.T, o fieldbroker.Options) *fieldbroker.Broker {
	t.Helper()
	if o.Listen == "" && o.TLSListen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.Devices == nil {
		o.Devices = testDevices
	}
	b, err := fieldbroker.Start(o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// clientOpts are paho options for a device of testDevices, MQTT 3.1.1.
func clientOpts(addr, user, pass, clientID string, clean bool) *paho.ClientOptions {
	o := paho.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetClientID(clientID).
		SetUsername(user).
		SetPassword(pass).
		SetCleanSession(clean).
		SetProtocolVersion(4).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(wait).
		SetKeepAlive(30 * time.Second).
		SetWriteTimeout(wait)
	return o
}

func connect(t *testing.T, o *paho.ClientOptions) paho.Client {
	t.Helper()
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(wait) {
		t.Fatalf("connect: no answer within %v", wait)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("connect %s: %v", o.ClientID, err)
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

// connectErr connects and returns the error (nil on success).
func connectErr(t *testing.T, o *paho.ClientOptions) error {
	t.Helper()
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(wait) {
		t.Fatalf("connect: no answer within %v", wait)
	}
	if tok.Error() == nil {
		t.Cleanup(func() { c.Disconnect(50) })
	}
	return tok.Error()
}

func waitToken(t *testing.T, what string, tok paho.Token) {
	t.Helper()
	if !tok.WaitTimeout(wait) {
		t.Fatalf("%s: no PUBACK/SUBACK within %v", what, wait)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func publish(t *testing.T, c paho.Client, topic, payload string) {
	t.Helper()
	waitToken(t, "publish "+topic, c.Publish(topic, 1, false, payload))
}

// waitStats polls Stats until cond holds (counters are updated by other
// goroutines; there is no event to wait on).
func waitStats(t *testing.T, b *fieldbroker.Broker, what string, cond func(fieldbroker.Stats) bool) fieldbroker.Stats {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		s := b.Stats()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; stats %+v", what, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fileStore is the paho outbox of a reconnecting test device. paho's
// MemoryStore hands resume() the same packet the writer goroutine may still
// be writing, and resume sets its DUP flag: a data race inside paho v1.5.1
// (eclipse-paho/paho.mqtt.golang#703) that fails -race runs. The FileStore
// decodes a fresh packet.
func fileStore(t *testing.T) paho.Store { return paho.NewFileStore(t.TempDir()) }

// connHolder lets a test cut a paho client's TCP connection (an unclean end).
type connHolder struct {
	mu sync.Mutex
	c  net.Conn
}

func (h *connHolder) open(uri *url.URL, _ paho.ClientOptions) (net.Conn, error) {
	c, err := net.Dial("tcp", uri.Host)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", uri.Host, err)
	}
	h.mu.Lock()
	h.c = c
	h.mu.Unlock()
	return c, nil
}

func (h *connHolder) cut() {
	h.mu.Lock()
	defer h.mu.Unlock()
	_ = h.c.Close()
}
