package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

type count struct {
	mqtt.HookBase
	mu     sync.Mutex
	topics map[string]int
}

func (h *count) ID() string           { return "count" }
func (h *count) Provides(b byte) bool { return b == mqtt.OnPublish }
func (h *count) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	h.mu.Lock()
	h.topics[cl.ID+" "+pk.TopicName[:strings.LastIndexByte(pk.TopicName, '/')]]++
	h.mu.Unlock()
	return pk, nil
}

// Two recorders and a kiosk run a simulated hour against a real broker,
// each on its own client id and topic prefix.
func TestRun(t *testing.T) {
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	h := &count{topics: map[string]int{}}
	for _, hk := range []mqtt.Hook{new(auth.AllowHook), h} {
		if err := srv.AddHook(hk, nil); err != nil {
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
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	err := run(ctx, []string{"-broker", "tcp://" + l.Address(), "-speed", "1e7", "-duration", "1h",
		"-recorder", "zfy-001:a", "-recorder", "zfy-002:b", "-kiosk", "hall-kiosk-1:c"}, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range []string{"zfy-001 field/zfy-001", "zfy-002 field/zfy-002", "hall-kiosk-1 field/hall-kiosk-1"} {
		if h.topics[k] < 10 {
			t.Errorf("%s: %d messages (%v)", k, h.topics[k], h.topics)
		}
	}
	if len(h.topics) != 3 {
		t.Errorf("topics %v", h.topics)
	}
	if err := run(ctx, []string{"-recorder", "nopassword"}, &stderr); err == nil {
		t.Error("bad -recorder accepted")
	}
}
