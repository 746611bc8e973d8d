package mqttpub_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/townlink/townlink/uplink/mqttpub"
)

// deadline bounds every wait in these tests; it only prevents hangs.
const deadline = 20 * time.Second

type rawMsg struct {
	topic    string
	payload  []byte
	retained bool
}

// rawSub is an independent plain paho subscriber (not our Client).
type rawSub struct {
	ch chan rawMsg
}

func rawClient(t testing.TB, url, id string, tlsCfg *tls.Config) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).SetProtocolVersion(4)
	if tlsCfg != nil {
		o.SetTLSConfig(tlsCfg)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(deadline) || tok.Error() != nil {
		t.Fatalf("raw client %s connect %s: %v", id, url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func subscribe(t testing.TB, url string, tlsCfg *tls.Config, filter string) *rawSub {
	t.Helper()
	c := rawClient(t, url, "sub-"+t.Name(), tlsCfg)
	s := &rawSub{ch: make(chan rawMsg, 100000)}
	tok := c.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
		s.ch <- rawMsg{m.Topic(), append([]byte(nil), m.Payload()...), m.Retained()}
	})
	if !tok.WaitTimeout(deadline) || tok.Error() != nil {
		t.Fatalf("raw subscribe %s: %v", filter, tok.Error())
	}
	return s
}

func (s *rawSub) next(t testing.TB) rawMsg {
	t.Helper()
	select {
	case m := <-s.ch:
		return m
	case <-time.After(deadline):
		t.Fatalf("no message within %v", deadline)
		return rawMsg{}
	}
}

func rawPublish(t testing.TB, c mqtt.Client, topic string, payload []byte) {
	t.Helper()
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(deadline) || tok.Error() != nil {
		t.Fatalf("raw publish %s: %v", topic, tok.Error())
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testOptions are fast-reconnecting options for tests.
func testOptions(t testing.TB, brokers ...string) mqttpub.Options {
	return mqttpub.Options{
		Brokers:        brokers,
		ClientID:       "gw-" + t.Name(),
		KeepAlive:      5 * time.Second,
		ConnectTimeout: 3 * time.Second,
		PublishTimeout: 10 * time.Second,
		Backoff:        mqttpub.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond},
		Logger:         testLogger(t),
	}
}

// start creates and starts a Client, closed at cleanup.
func start(t testing.TB, o mqttpub.Options) *mqttpub.Client {
	t.Helper()
	c, err := mqttpub.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.Start(ctx)
	t.Cleanup(func() {
		c.Close()
		cancel()
	})
	return c
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", deadline, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitConnected(t testing.TB, c *mqttpub.Client) {
	t.Helper()
	waitFor(t, "connection", c.Connected)
}
