package uplink_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/uplink"
)

// NewForwarder refuses every bad option with an error naming the field,
// and never changes the caller's config.
func TestNewForwarderValidates(t *testing.T) {
	l := newLedger()
	q := newMemQueue(t, l)
	p := newStampPublisher(t, l)
	ok := func() uplink.ForwarderConfig {
		return uplink.ForwarderConfig{Queue: q, Publisher: p, Topic: "t/telemetry", Frame: frame}
	}
	pacer, err := uplink.NewPacer(100, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		field string
		edit  func(*uplink.ForwarderConfig)
	}{
		{"Queue", func(c *uplink.ForwarderConfig) { c.Queue = nil }},
		{"Publisher", func(c *uplink.ForwarderConfig) { c.Publisher = nil }},
		{"Topic", func(c *uplink.ForwarderConfig) { c.Topic = "" }},
		{"Frame", func(c *uplink.ForwarderConfig) { c.Frame = nil }},
		{"MaxBatch", func(c *uplink.ForwarderConfig) { c.MaxBatch = -1 }},
		{"MaxBytes", func(c *uplink.ForwarderConfig) { c.MaxBytes = -1 }},
		{"MaxDelay", func(c *uplink.ForwarderConfig) { c.MaxDelay = -time.Second }},
		{"Window", func(c *uplink.ForwarderConfig) { c.Window = -8 }},
		{"Retry", func(c *uplink.ForwarderConfig) { c.Retry = -1 }},
		{"MaxRetry", func(c *uplink.ForwarderConfig) { c.MaxRetry = -1 }},
		{"MaxRetry", func(c *uplink.ForwarderConfig) { c.Retry, c.MaxRetry = time.Minute, time.Second }},
		{"Ack", func(c *uplink.ForwarderConfig) { c.Ack = 7 }},
		{"AckTimeout", func(c *uplink.ForwarderConfig) { c.Ack, c.AckTimeout = uplink.AckPlatform, -1 }},
		{"AckTimeout", func(c *uplink.ForwarderConfig) { c.AckTimeout = time.Second }}, // broker mode
		{"MaxUnacked", func(c *uplink.ForwarderConfig) { c.Ack, c.MaxUnacked = uplink.AckPlatform, -1 }},
		{"MaxUnacked", func(c *uplink.ForwarderConfig) { c.MaxUnacked = 10 }}, // broker mode
		// A paced forwarder needs a Queue that reports its last seq; the
		// wrapper hides memQueue's LastSeq.
		{"Pacer", func(c *uplink.ForwarderConfig) { c.Queue, c.Pacer = struct{ uplink.Queue }{q}, pacer }},
	} {
		cfg := ok()
		c.edit(&cfg)
		f, err := uplink.NewForwarder(cfg)
		if !errors.Is(err, uplink.ErrForwarder) || f != nil {
			t.Errorf("%s: NewForwarder = %v, %v; want nil, ErrForwarder", c.field, f, err)
			continue
		}
		if !strings.Contains(err.Error(), ": "+c.field+":") {
			t.Errorf("%s: error %q does not name the field", c.field, err)
		}
	}
}

func TestNewForwarderDefaults(t *testing.T) {
	l := newLedger()
	q := newMemQueue(t, l)
	cfg := uplink.ForwarderConfig{Queue: q, Publisher: newStampPublisher(t, l), Topic: "t/events", Frame: frame,
		Ack: uplink.AckPlatform, Retry: 10 * time.Second}
	f, err := uplink.NewForwarder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxBatch != 0 || cfg.Window != 0 || cfg.MaxRetry != 0 || cfg.AckTimeout != 0 || cfg.Logger != nil {
		t.Errorf("NewForwarder changed the caller's config: %+v", cfg)
	}
	got := f.Config()
	if got.MaxBatch != uplink.DefaultMaxBatch || got.Window != uplink.DefaultWindow || got.Retry != 10*time.Second ||
		got.MaxRetry != uplink.DefaultMaxRetry || got.AckTimeout != uplink.DefaultAckTimeout ||
		got.MaxUnacked != uplink.DefaultUnackedBatches*uplink.DefaultWindow*uplink.DefaultMaxBatch || got.Logger == nil {
		t.Errorf("defaults: %+v", got)
	}
	cfg.Retry = time.Hour // longer than the default MaxRetry: the pause stops doubling at Retry
	f, err = uplink.NewForwarder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Config().MaxRetry; got != time.Hour {
		t.Errorf("MaxRetry with Retry 1h = %v, want 1h", got)
	}
}

// Run refuses to run twice at once on one Forwarder, and may run again
// after it returned.
func TestForwarderRunOnceAtATime(t *testing.T) {
	l := newLedger()
	q := newMemQueue(t, l)
	q.add(1)
	p := newStampPublisher(t, l)
	f := newFwd(t, uplink.ForwarderConfig{Queue: q, Publisher: p, Topic: "t/alarms", Frame: frame})
	stop, _ := runForwarder(t, f)
	waitFor(t, "seq 1 acked", func() bool { return q.isAcked(1) })
	if err := f.Run(t.Context()); !errors.Is(err, uplink.ErrForwarder) {
		t.Fatalf("second Run while running = %v, want ErrForwarder", err)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	q.add(1)
	stop, _ = runForwarder(t, f)
	waitFor(t, "seq 2 acked by the second Run", func() bool { return q.isAcked(2) })
	stop()
	q.check(t, 2)
}
