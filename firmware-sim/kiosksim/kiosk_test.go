package kiosksim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/townlink/townlink/internal/testkit/mochitest"
)

func run(t *testing.T, b *mochitest.Broker, o Options) *Journal {
	t.Helper()
	o.Broker, o.Journal = b.Addr, &Journal{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	return o.Journal
}

var hexRef = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestHall(t *testing.T) {
	b := mochitest.Start(t)
	start := time.Date(2024, 11, 30, 9, 0, 0, 0, time.UTC)
	j := run(t, b, Options{ID: "hall-kiosk-1", Speed: 1e7, Seed: 5, Start: start, Duration: 3 * time.Hour})
	entries := j.Entries()
	got := b.Messages()
	if len(got) != len(entries) {
		t.Fatalf("broker got %d, journal %d", len(got), len(entries))
	}
	issued := map[string]time.Time{}
	called := map[string]bool{}
	count := map[string]int{}
	refs, low := 0, 0
	var last time.Time
	for i, e := range entries {
		if got[i].Topic != "field/hall-kiosk-1/"+e.Event || !bytes.Equal(got[i].Payload, e.Payload) {
			t.Fatalf("message %d differs", i)
		}
		if e.At.Before(last) {
			t.Fatalf("message %d goes back in time", i)
		}
		last = e.At
		env := mochitest.Envelope(t, e.Payload)
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
	again := run(t, mochitest.Start(t), Options{ID: "hall-kiosk-1", Speed: 1e7, Seed: 5, Start: start, Duration: 3 * time.Hour}).Entries()
	if len(again) != len(entries) {
		t.Fatalf("rerun: %d messages, first run %d", len(again), len(entries))
	}
	for i := range again {
		if !bytes.Equal(again[i].Payload, entries[i].Payload) {
			t.Fatalf("rerun differs at %d:\n%s\n%s", i, again[i].Payload, entries[i].Payload)
		}
	}
}

func TestResendWithoutPuback(t *testing.T) {
	h := mochitest.NewDropOnce(7)
	b := mochitest.Start(t, h)
	j := run(t, b, Options{ID: "hall-kiosk-2", Speed: 1e7, Seed: 1, Count: 20})
	if h.Connects() < 2 {
		t.Fatalf("connected %d times: no drop", h.Connects())
	}
	seqs := map[int64]bool{}
	for _, m := range b.Messages() {
		if s, ok := mochitest.Envelope(t, m.Payload)["seq"].(json.Number); ok {
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
