package kiosksim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

type received struct {
	topic   string
	payload []byte
}

// broker is an in-process mochi broker on 127.0.0.1:0 that records every
// message published, before its PUBACK (mochi calls inline subscribers
// only after the PUBACK).
type broker struct {
	srv  *mqtt.Server
	addr string
	mu   sync.Mutex
	msgs []received
	got  chan struct{}
}

func startBroker(t *testing.T, hooks ...mqtt.Hook) *broker {
	t.Helper()
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	for _, h := range hooks {
		if err := srv.AddHook(h, nil); err != nil {
			t.Fatal(err)
		}
	}
	b := &broker{srv: srv, got: make(chan struct{}, 1<<16)}
	if err := srv.AddHook(&tap{b: b}, nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	b.addr = "tcp://" + l.Address()
	t.Cleanup(func() { srv.Close() })
	return b
}

// OnPublish records a message before the broker acknowledges it (as the
// gateway does); hooks added before it may reject the message first.
func (b *broker) OnPublish(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	b.mu.Lock()
	b.msgs = append(b.msgs, received{pk.TopicName, bytes.Clone(pk.Payload)})
	b.mu.Unlock()
	b.got <- struct{}{}
	return pk, nil
}

// tap adapts broker.OnPublish to a mochi hook.
type tap struct {
	mqtt.HookBase
	b *broker
}

func (h *tap) ID() string { return "tap" }
func (h *tap) Provides(x byte) bool {
	return x == mqtt.OnPublish || x == mqtt.OnWillSent
}

// OnWillSent records a last will: mochi publishes it without OnPublish.
func (h *tap) OnWillSent(cl *mqtt.Client, pk packets.Packet) { h.b.OnPublish(cl, pk) }
func (h *tap) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	return h.b.OnPublish(cl, pk)
}

func (b *broker) all() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.msgs...)
}

// envelope decodes a JSON or CBOR message.
func envelope(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	var err error
	if b[0] == '{' {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		err = d.Decode(&m)
	} else {
		var dm cbor.DecMode
		dm, err = cbor.DecOptions{DefaultMapType: reflect.TypeOf(map[string]any(nil))}.DecMode()
		if err == nil {
			err = dm.Unmarshal(b, &m)
		}
	}
	if err != nil {
		t.Fatalf("payload %q: %v", b, err)
	}
	return m
}

func seqOf(t *testing.T, b []byte) int64 {
	switch s := envelope(t, b)["seq"].(type) {
	case json.Number:
		n, _ := s.Int64()
		return n
	case uint64:
		return int64(s)
	}
	t.Fatalf("no seq in %q", b)
	return 0
}

func run(t *testing.T, b *broker, o Options) *Journal {
	t.Helper()
	o.Broker, o.Journal = b.addr, &Journal{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	return o.Journal
}

var hexRef = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestHall(t *testing.T) {
	b := startBroker(t)
	start := time.Date(2024, 11, 30, 9, 0, 0, 0, time.UTC)
	j := run(t, b, Options{ID: "hall-kiosk-1", Speed: 1e7, Seed: 5, Start: start, Duration: 3 * time.Hour})
	entries := j.Entries()
	got := b.all()
	if len(got) != len(entries) {
		t.Fatalf("broker got %d, journal %d", len(got), len(entries))
	}
	issued := map[string]time.Time{}
	called := map[string]bool{}
	count := map[string]int{}
	refs, low := 0, 0
	var last time.Time
	for i, e := range entries {
		if got[i].topic != "field/hall-kiosk-1/"+e.Event || !bytes.Equal(got[i].payload, e.Payload) {
			t.Fatalf("message %d differs", i)
		}
		if e.At.Before(last) {
			t.Fatalf("message %d goes back in time", i)
		}
		last = e.At
		env := envelope(t, e.Payload)
		p := env["payload"].(map[string]any)
		if ts, _ := env["ts"].(json.Number).Int64(); ts != e.At.UnixMilli() {
			t.Errorf("message %d: ts %d, at %v", i, ts, e.At)
		}
		count[e.Event]++
		switch e.Event {
		case "ticket.issued":
			issued[e.Ticket] = e.At
			if r, ok := p["citizen_ref"].(string); ok {
				refs++
				if !hexRef.MatchString(r) {
					t.Errorf("citizen_ref %q is not a SHA-256 hex", r)
				}
			}
		case "ticket.called":
			if _, ok := issued[e.Ticket]; !ok || called[e.Ticket] {
				t.Errorf("call of %s: issued %v, called before %v", e.Ticket, ok, called[e.Ticket])
			}
			called[e.Ticket] = true
		case "service.rated":
			if e.Rating < 1 || e.Rating > 5 {
				t.Errorf("rating %d", e.Rating)
			}
			if e.Rating <= 2 {
				low++
				if rs, _ := p["reasons"].([]any); len(rs) == 0 {
					t.Errorf("rating %d without reasons: %s", e.Rating, e.Payload)
				}
			}
		}
	}
	for _, ev := range []string{"ticket.issued", "ticket.called", "service.started", "service.finished", "service.rated", "window.status", "device.status"} {
		if count[ev] == 0 {
			t.Errorf("no %s: %v", ev, count)
		}
	}
	if refs == 0 || refs == count["ticket.issued"] {
		t.Errorf("%d of %d tickets carry a citizen_ref", refs, count["ticket.issued"])
	}
	t.Logf("%v, %d low ratings", count, low)

	// Same seed, same hall.
	again := run(t, startBroker(t), Options{ID: "hall-kiosk-1", Speed: 1e7, Seed: 5, Start: start, Duration: 3 * time.Hour}).Entries()
	if len(again) != len(entries) {
		t.Fatalf("rerun: %d messages, first run %d", len(again), len(entries))
	}
	for i := range again {
		if !bytes.Equal(again[i].Payload, entries[i].Payload) {
			t.Fatalf("rerun differs at %d:\n%s\n%s", i, again[i].Payload, entries[i].Payload)
		}
	}
}

// dropOnce plays a gateway that dies before its PUBACK: the n-th publish
// is neither delivered nor acknowledged, and the connection is cut.
type dropOnce struct {
	mqtt.HookBase
	n, seen  atomic.Int32
	connects atomic.Int32
}

func (h *dropOnce) ID() string { return "drop-once" }
func (h *dropOnce) Provides(b byte) bool {
	return b == mqtt.OnPublish || b == mqtt.OnSessionEstablished
}
func (h *dropOnce) OnSessionEstablished(*mqtt.Client, packets.Packet) { h.connects.Add(1) }
func (h *dropOnce) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if h.seen.Add(1) == h.n.Load() {
		cl.Stop(errors.New("gateway died"))
		return pk, packets.ErrRejectPacket
	}
	return pk, nil
}

func TestResendWithoutPuback(t *testing.T) {
	h := &dropOnce{}
	h.n.Store(7)
	b := startBroker(t, h)
	j := run(t, b, Options{ID: "hall-kiosk-2", Speed: 1e7, Seed: 1, Count: 20})
	if h.connects.Load() < 2 {
		t.Fatalf("connected %d times: no drop", h.connects.Load())
	}
	seqs := map[int64]bool{}
	for _, m := range b.all() {
		if s, ok := envelope(t, m.payload)["seq"].(json.Number); ok {
			n, _ := s.Int64()
			seqs[n] = true
		}
	}
	for s := int64(1); s <= 20; s++ {
		if !seqs[s] {
			t.Errorf("seq %d lost", s)
		}
	}
	if len(j.Entries()) != 20 {
		t.Errorf("journal %d", len(j.Entries()))
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []Options{
		{Broker: "tcp://127.0.0.1:1"},
		{Broker: "ws://127.0.0.1:1", ID: "x"},
		{Broker: "tcp://127.0.0.1:1", ID: "x", Services: []Service{{Name: "a"}}},
	} {
		if err := Run(context.Background(), o); !errors.Is(err, ErrOptions) {
			t.Errorf("Run(%+v) = %v", o, err)
		}
	}
}
