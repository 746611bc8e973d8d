package mqttin_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/uplink/county"
	"github.com/townlink/townlink/uplink/county/mqttin"
	"github.com/townlink/townlink/uplink/mqttpub"
	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
	"github.com/townlink/townlink/uplink/wire"
)

func client(t *testing.T, ctx context.Context, url, id string) *mqttpub.Client {
	t.Helper()
	c, err := mqttpub.New(mqttpub.Options{Brokers: []string{url}, ClientID: id, PersistentSession: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.Start(ctx)
	for !c.Connected() {
		time.Sleep(10 * time.Millisecond)
	}
	return c
}

// Two workers share mosquitto's $share subscription: every message is
// committed by one of them, and the load is split.
func TestSharedSubscriptionSplitsTheLoad(t *testing.T) {
	b := mosquittotest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 200
	var mu sync.Mutex
	got := map[string]int{}
	per := map[int]int{}
	errs := make(chan error, 2)
	for w := range 2 {
		sub := client(t, ctx, b.URL, fmt.Sprintf("county-%d", w))
		go func() {
			errs <- mqttin.Run(ctx, sub, mqttin.Config{}, func(_ context.Context, ms []county.Message) error {
				mu.Lock()
				defer mu.Unlock()
				for _, m := range ms {
					got[string(m.Payload)]++
					per[w]++
				}
				if len(got) == n {
					cancel()
				}
				return nil
			})
		}()
	}
	time.Sleep(300 * time.Millisecond) // the subscriptions are made on connect
	pub := client(t, ctx, b.URL, "gw-1")
	for i := range n {
		if err := pub.Publish(ctx, wire.Topic("320583", "320583104", "gw-1", wire.StreamTelemetry), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n {
		t.Fatalf("%d distinct messages committed, want %d", len(got), n)
	}
	if per[0] == 0 || per[1] == 0 {
		t.Fatalf("load not shared: %v", per)
	}
}
