package mqttpub_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/mqttpub"
	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
)

func TestPublishDeliversExactBytes(t *testing.T) {
	b := mosquittotest.Start(t)
	sub := subscribe(t, b.URL, nil, "townlink/v1/#")
	c := start(t, testOptions(t, b.URL))
	waitConnected(t, c)
	if c.Broker() != b.URL {
		t.Errorf("Broker() = %q, want %q", c.Broker(), b.URL)
	}

	big := make([]byte, 18<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	payloads := [][]byte{{0x00, 0xff, 0x00}, big, []byte("x")}
	for i, p := range payloads {
		if err := c.Publish(t.Context(), "townlink/v1/320583/320583104/gw1/telemetry", p); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	// The client does not promise order (SetOrderMatters(false)); match by content.
	got := map[string]bool{}
	for range payloads {
		m := sub.next(t)
		if m.topic != "townlink/v1/320583/320583104/gw1/telemetry" || m.retained {
			t.Errorf("got topic %q retained %v", m.topic, m.retained)
		}
		got[string(m.payload)] = true
	}
	for i, p := range payloads {
		if !got[string(p)] {
			t.Errorf("payload %d (%d bytes) not received byte for byte", i, len(p))
		}
	}

	// Retained: a subscriber arriving later gets it, flagged retained.
	status := []byte("online")
	if err := c.PublishRetained(t.Context(), "townlink/v1/320583/320583104/gw1/status", status); err != nil {
		t.Fatal(err)
	}
	late := subscribe(t, b.URL, nil, "townlink/v1/320583/320583104/gw1/status")
	if m := late.next(t); !m.retained || !bytes.Equal(m.payload, status) {
		t.Errorf("late subscriber got %q retained=%v, want %q retained", m.payload, m.retained, status)
	}
}

// A PUBACK withheld by the network keeps Publish waiting: it returns nil only
// once the PUBACK arrives.
func TestPublishReturnsOnlyAfterPuback(t *testing.T) {
	b := mosquittotest.Start(t)
	p := mosquittotest.NewProxy(t, b.Addr)
	sub := subscribe(t, b.URL, nil, "t/puback")
	c := start(t, testOptions(t, p.URL))
	waitConnected(t, c)

	p.Hold() // bytes from the broker (the PUBACK) stay in the proxy
	done := make(chan error, 1)
	go func() { done <- c.Publish(t.Context(), "t/puback", []byte("held")) }()
	// The broker has the message (the subscriber got it), so it has sent the
	// PUBACK; the proxy holds it, so Publish must still be waiting.
	if m := sub.next(t); string(m.payload) != "held" {
		t.Fatalf("subscriber got %q", m.payload)
	}
	select {
	case err := <-done:
		t.Fatalf("Publish returned %v before the PUBACK reached the client", err)
	default:
	}
	p.Release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Publish after release: %v", err)
		}
	case <-time.After(deadline):
		t.Fatal("Publish did not return after the PUBACK was released")
	}
}

// A connection cut while the PUBACK is outstanding fails the Publish with
// ErrConnectionLost (or ErrNotConnected), never nil.
func TestPublishFailsWhenConnectionLostBeforePuback(t *testing.T) {
	b := mosquittotest.Start(t)
	p := mosquittotest.NewProxy(t, b.Addr)
	sub := subscribe(t, b.URL, nil, "t/lost")
	c := start(t, testOptions(t, p.URL))
	waitConnected(t, c)

	p.Hold()
	done := make(chan error, 1)
	go func() { done <- c.Publish(t.Context(), "t/lost", []byte("maybe")) }()
	sub.next(t) // the broker has it
	p.Cut()
	select {
	case err := <-done:
		if !errors.Is(err, mqttpub.ErrConnectionLost) && !errors.Is(err, mqttpub.ErrNotConnected) {
			t.Fatalf("Publish = %v, want ErrConnectionLost or ErrNotConnected", err)
		}
	case <-time.After(deadline):
		t.Fatal("Publish did not return after the connection was cut")
	}
	// It reconnects through the proxy by itself.
	waitConnected(t, c)
	if err := c.Publish(t.Context(), "t/lost", []byte("again")); err != nil {
		t.Fatalf("publish after reconnect: %v", err)
	}
}

func TestBrokerDownAtStart(t *testing.T) {
	b := mosquittotest.Start(t)
	b.Stop() // the port stays ours; nothing listens on it
	sub := (*rawSub)(nil)

	c := start(t, testOptions(t, b.URL))
	waitFor(t, "a failed connection attempt", func() bool { return c.LastError() != nil })
	var ce *mqttpub.ConnectError
	if err := c.LastError(); !errors.As(err, &ce) || !errors.Is(err, mqttpub.ErrConnect) || ce.Broker != b.URL {
		t.Errorf("LastError = %v, want a *ConnectError for %s wrapping ErrConnect", err, b.URL)
	}
	if c.Connected() {
		t.Fatal("Connected with the broker down")
	}
	done := make(chan error, 1)
	go func() { done <- c.Publish(t.Context(), "t/down", []byte("x")) }()
	select {
	case err := <-done:
		if !errors.Is(err, mqttpub.ErrNotConnected) {
			t.Fatalf("Publish while down = %v, want ErrNotConnected", err)
		}
	case <-time.After(deadline):
		t.Fatal("Publish while disconnected did not return")
	}

	b.Restart(t)
	sub = subscribe(t, b.URL, nil, "t/down")
	waitConnected(t, c)
	if c.LastError() != nil {
		t.Errorf("LastError while connected = %v, want nil", c.LastError())
	}
	if err := c.Publish(t.Context(), "t/down", []byte("after restart")); err != nil {
		t.Fatal(err)
	}
	if m := sub.next(t); string(m.payload) != "after restart" {
		t.Errorf("got %q", m.payload)
	}
}

func TestFailover(t *testing.T) {
	b1 := mosquittotest.Start(t)
	b2 := mosquittotest.Start(t)
	sub2 := subscribe(t, b2.URL, nil, "t/fo")
	c := start(t, testOptions(t, b1.URL, b2.URL))
	waitFor(t, "connection to broker 1", func() bool { return c.Connected() && c.Broker() == b1.URL })

	b1.Stop()
	waitFor(t, "failover to broker 2", func() bool { return c.Connected() && c.Broker() == b2.URL })
	if err := c.Publish(t.Context(), "t/fo", []byte("via b2")); err != nil {
		t.Fatal(err)
	}
	if m := sub2.next(t); string(m.payload) != "via b2" {
		t.Errorf("got %q", m.payload)
	}

	// Broker 1 dead at start: the client goes straight on to broker 2.
	o := testOptions(t, b1.URL, b2.URL)
	o.ClientID += "-2"
	c2 := start(t, o)
	waitFor(t, "second client on broker 2", func() bool { return c2.Connected() && c2.Broker() == b2.URL })
	if err := c2.Publish(t.Context(), "t/fo", []byte("c2 via b2")); err != nil {
		t.Fatal(err)
	}
	if m := sub2.next(t); string(m.payload) != "c2 via b2" {
		t.Errorf("got %q", m.payload)
	}
}

func TestLastWill(t *testing.T) {
	b := mosquittotest.Start(t)
	p := mosquittotest.NewProxy(t, b.Addr)
	const topic = "townlink/v1/320583/320583104/gw1/status"
	sub := subscribe(t, b.URL, nil, topic)

	o := testOptions(t, p.URL)
	o.Will = &mqttpub.Message{Topic: topic, Payload: []byte("offline")}
	var connects atomic.Int32
	o.OnConnect = func() { connects.Add(1) }
	c := start(t, o)
	waitConnected(t, c)

	p.Cut() // the network dies: no DISCONNECT reaches the broker
	m := sub.next(t)
	if m.topic != topic || string(m.payload) != "offline" {
		t.Fatalf("got %q on %q, want the will", m.payload, m.topic)
	}
	late := subscribe(t, b.URL, nil, topic)
	if m := late.next(t); !m.retained || string(m.payload) != "offline" {
		t.Errorf("will not retained: %q retained=%v", m.payload, m.retained)
	}
	waitFor(t, "OnConnect after reconnect", func() bool { return connects.Load() >= 2 })
}

// Close disconnects cleanly, so the broker does not publish the will.
func TestCloseDoesNotSendWill(t *testing.T) {
	b := mosquittotest.Start(t)
	const topic = "t/will-clean"
	sub := subscribe(t, b.URL, nil, topic)
	o := testOptions(t, b.URL)
	o.Will = &mqttpub.Message{Topic: topic, Payload: []byte("offline")}
	c := start(t, o)
	waitConnected(t, c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// A marker published by a new connection after Close returns reaches the
	// subscriber after anything the broker did on the disconnect.
	rawPublish(t, rawClient(t, b.URL, "marker", nil), topic, []byte("marker"))
	if m := sub.next(t); string(m.payload) != "marker" {
		t.Errorf("got %q before the marker: the will was sent on a clean Close", m.payload)
	}
	if err := c.Publish(context.Background(), topic, []byte("x")); !errors.Is(err, uplink.ErrClosed) {
		t.Errorf("Publish after Close = %v, want uplink.ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestSubscribeRenewedAfterReconnect(t *testing.T) {
	b := mosquittotest.Start(t)
	got := make(chan string, 10)
	var connects atomic.Int32
	o := testOptions(t, b.URL)
	o.OnConnect = func() { connects.Add(1) }
	c := start(t, o)
	// Subscribing before the connection is up is fine: it is made on connect.
	if err := c.Subscribe(t.Context(), "townlink/v1/+/+/gw1/cmd", func(topic string, payload []byte) {
		got <- topic + " " + string(payload)
	}); err != nil {
		t.Fatal(err)
	}
	waitConnected(t, c)
	recv := func(want string) {
		t.Helper()
		pub := rawClient(t, b.URL, "cmd-"+want, nil)
		// The subscription may be renewed just after the connection is up:
		// publish until it arrives.
		end := time.Now().Add(deadline)
		for {
			rawPublish(t, pub, "townlink/v1/320583/320583104/gw1/cmd", []byte(want))
			select {
			case m := <-got:
				if m != "townlink/v1/320583/320583104/gw1/cmd "+want {
					t.Fatalf("handler got %q", m)
				}
				return
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(end) {
				t.Fatalf("command %q never reached the handler", want)
			}
		}
	}
	recv("one")
	b.Restart(t)
	waitFor(t, "reconnect", func() bool { return connects.Load() >= 2 && c.Connected() })
	recv("two")
}

func TestUsernamePassword(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.WithUser("gw1", "s3cret"))
	o := testOptions(t, b.URL)
	o.Username, o.Password = "gw1", "s3cret"
	c := start(t, o)
	waitConnected(t, c)

	o = testOptions(t, b.URL)
	o.ClientID += "-bad"
	o.Username, o.Password = "gw1", "wrong"
	bad := start(t, o)
	waitFor(t, "refusal", func() bool { return bad.LastError() != nil })
	if err := bad.LastError(); !errors.Is(err, mqttpub.ErrRefused) {
		t.Errorf("LastError = %v, want ErrRefused", err)
	}
	if bad.Connected() {
		t.Error("connected with a wrong password")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	base := mqttpub.Options{Brokers: []string{"tcp://127.0.0.1:1883"}, ClientID: "gw1"}
	if _, err := mqttpub.New(base); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*mqttpub.Options)
		want string
	}{
		{"no brokers", func(o *mqttpub.Options) { o.Brokers = nil }, "no brokers"},
		{"no scheme", func(o *mqttpub.Options) { o.Brokers = []string{"127.0.0.1:1883"} }, "127.0.0.1:1883"},
		{"websocket", func(o *mqttpub.Options) { o.Brokers = []string{"ws://h:80"} }, `unsupported scheme "ws"`},
		{"no port", func(o *mqttpub.Options) { o.Brokers = []string{"tcp://county.example"} }, "want host:port"},
		{"bad port", func(o *mqttpub.Options) { o.Brokers = []string{"tcp://h:99999"} }, `bad port "99999"`},
		{"empty host", func(o *mqttpub.Options) { o.Brokers = []string{"ssl://:8883"} }, "empty host"},
		{"second bad", func(o *mqttpub.Options) { o.Brokers = []string{"tcp://h:1883", "tcp//h:1883"} }, "brokers[1]"},
		{"credentials in url", func(o *mqttpub.Options) { o.Brokers = []string{"tcp://u:p@h:1883"} }, "Username/Password"},
		{"path", func(o *mqttpub.Options) { o.Brokers = []string{"tcp://h:1883/mqtt"} }, "path"},
		{"no client id", func(o *mqttpub.Options) { o.ClientID = "" }, "client id"},
		{"will wildcard", func(o *mqttpub.Options) { o.Will = &mqttpub.Message{Topic: "a/#"} }, "wildcard"},
		{"backoff", func(o *mqttpub.Options) { o.Backoff = mqttpub.Backoff{Min: time.Minute, Max: time.Second} }, "backoff max"},
		{"keepalive", func(o *mqttpub.Options) { o.KeepAlive = time.Millisecond }, "keep alive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.mod(&o)
			_, err := mqttpub.New(o)
			if !errors.Is(err, mqttpub.ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want ErrInvalidOptions mentioning %q", err, tc.want)
			}
		})
	}
}

func TestPublishAndSubscribeValidation(t *testing.T) {
	c, err := mqttpub.New(mqttpub.Options{Brokers: []string{"tcp://127.0.0.1:1"}, ClientID: "gw1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Not started: not connected.
	if err := c.Publish(t.Context(), "a/b", nil); !errors.Is(err, mqttpub.ErrNotConnected) {
		t.Errorf("Publish before Start = %v, want ErrNotConnected", err)
	}
	for _, topic := range []string{"", "a/+/b", "a/#", "a\x00b"} {
		if err := c.Publish(t.Context(), topic, nil); !errors.Is(err, mqttpub.ErrInvalidTopic) {
			t.Errorf("Publish(%q) = %v, want ErrInvalidTopic", topic, err)
		}
	}
	for _, f := range []string{"", "a/#/b", "a/b+", "a#"} {
		if err := c.Subscribe(t.Context(), f, func(string, []byte) {}); !errors.Is(err, mqttpub.ErrInvalidTopic) {
			t.Errorf("Subscribe(%q) = %v, want ErrInvalidTopic", f, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Publish(ctx, "a/b", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with cancelled ctx = %v", err)
	}
}

// When Start's ctx ends the connection stays up until Close, so the caller
// can publish its offline status; Close then disconnects cleanly.
func TestCtxEndKeepsConnectionForLastWords(t *testing.T) {
	b := mosquittotest.Start(t)
	const topic = "t/status"
	sub := subscribe(t, b.URL, nil, topic)
	o := testOptions(t, b.URL)
	o.Will = &mqttpub.Message{Topic: topic, Payload: []byte("will")}
	c, err := mqttpub.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.Start(ctx)
	waitConnected(t, c)
	cancel()
	if err := c.PublishRetained(context.Background(), topic, []byte("offline")); err != nil {
		t.Fatalf("publish after ctx ended: %v", err)
	}
	if m := sub.next(t); string(m.payload) != "offline" {
		t.Fatalf("got %q", m.payload)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if c.Connected() {
		t.Error("connected after Close")
	}
	rawPublish(t, rawClient(t, b.URL, "marker", nil), topic, []byte("marker"))
	if m := sub.next(t); string(m.payload) != "marker" {
		t.Errorf("got %q before the marker: the will was sent on Close", m.payload)
	}
}
