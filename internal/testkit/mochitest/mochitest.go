// Package mochitest is an in-process MQTT broker (mochi-mqtt) for tests of
// MQTT field devices: it listens on 127.0.0.1:0, lets every client in and
// records every message published before acknowledging it, as the
// gateway's field broker does. Production code never imports it
// (gateway/internal/archtest checks).
package mochitest

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fxamacker/cbor/v2"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Message is one message the broker received.
type Message struct {
	Client  string // the publisher's client id
	Topic   string
	Payload []byte
}

// Broker is a running broker; it is closed when the test ends.
type Broker struct {
	// Addr is the broker's URL, "tcp://127.0.0.1:port".
	Addr string

	mu   sync.Mutex
	msgs []Message
	got  chan struct{}
}

// Start runs a broker until the test ends. hooks run before the recorder
// (one may refuse a message, which is then not recorded).
func Start(t testing.TB, hooks ...mqtt.Hook) *Broker {
	t.Helper()
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	b := &Broker{got: make(chan struct{}, 1<<16)}
	for _, h := range append(append([]mqtt.Hook{new(auth.AllowHook)}, hooks...), &tap{b: b}) {
		if err := srv.AddHook(h, nil); err != nil {
			t.Fatal(err)
		}
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	b.Addr = "tcp://" + l.Address()
	t.Cleanup(func() { srv.Close() })
	return b
}

// Messages returns every message received so far, in order.
func (b *Broker) Messages() []Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Message(nil), b.msgs...)
}

// Got receives one value per message recorded.
func (b *Broker) Got() <-chan struct{} { return b.got }

func (b *Broker) record(cl *mqtt.Client, pk packets.Packet) {
	b.mu.Lock()
	b.msgs = append(b.msgs, Message{Client: cl.ID, Topic: pk.TopicName, Payload: bytes.Clone(pk.Payload)})
	b.mu.Unlock()
	b.got <- struct{}{}
}

// tap records messages for Broker. mochi runs OnPublish hooks before it
// sends the PUBACK, and publishes a last will without OnPublish.
type tap struct {
	mqtt.HookBase
	b *Broker
}

func (h *tap) ID() string { return "mochitest-tap" }
func (h *tap) Provides(x byte) bool {
	return x == mqtt.OnPublish || x == mqtt.OnWillSent
}
func (h *tap) OnWillSent(cl *mqtt.Client, pk packets.Packet) { h.b.record(cl, pk) }
func (h *tap) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	h.b.record(cl, pk)
	return pk, nil
}

// Envelope decodes a field message's envelope, JSON (numbers as
// json.Number) or CBOR (maps as map[string]any); anything else fails the
// test.
func Envelope(t testing.TB, payload []byte) map[string]any {
	t.Helper()
	var m map[string]any
	var err error
	switch {
	case len(payload) == 0:
		t.Fatal("empty payload")
	case payload[0] == '{':
		d := json.NewDecoder(bytes.NewReader(payload))
		d.UseNumber()
		err = d.Decode(&m)
	default:
		var dm cbor.DecMode
		dm, err = cbor.DecOptions{DefaultMapType: reflect.TypeOf(map[string]any(nil))}.DecMode()
		if err == nil {
			err = dm.Unmarshal(payload, &m)
		}
	}
	if err != nil {
		t.Fatalf("payload %q: %v", payload, err)
	}
	return m
}

// Seq is a field message's envelope seq; a message without one fails the
// test.
func Seq(t testing.TB, payload []byte) int64 {
	t.Helper()
	switch s := Envelope(t, payload)["seq"].(type) {
	case json.Number:
		if n, err := s.Int64(); err == nil {
			return n
		}
	case uint64:
		return int64(s)
	}
	t.Fatalf("no seq in %q", payload)
	return 0
}

// DropOnce is a hook that plays a gateway dying before its PUBACK: the
// n-th message published (counting from 1) is neither recorded nor
// acknowledged, and its client's connection is cut.
type DropOnce struct {
	mqtt.HookBase
	n        int32
	seen     atomic.Int32
	connects atomic.Int32
}

// NewDropOnce returns a hook that drops the n-th message.
func NewDropOnce(n int) *DropOnce { return &DropOnce{n: int32(n)} }

// Connects is the number of sessions established so far.
func (h *DropOnce) Connects() int { return int(h.connects.Load()) }

func (h *DropOnce) ID() string { return "mochitest-drop-once" }
func (h *DropOnce) Provides(b byte) bool {
	return b == mqtt.OnPublish || b == mqtt.OnSessionEstablished
}
func (h *DropOnce) OnSessionEstablished(*mqtt.Client, packets.Packet) { h.connects.Add(1) }
func (h *DropOnce) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if h.seen.Add(1) == h.n {
		cl.Stop(errors.New("mochitest: the gateway died before its PUBACK"))
		return pk, packets.ErrRejectPacket
	}
	return pk, nil
}
