package mqttpub

import (
	"testing"
	"time"
)

func TestBackoffGrowsWithinBounds(t *testing.T) {
	b := newBackoff(Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}, "gw1")
	base := 100 * time.Millisecond
	for i := 0; i < 20; i++ {
		d := b.next()
		if d < base/2 || d > base {
			t.Fatalf("pause %d = %v, want in [%v, %v]", i, d, base/2, base)
		}
		base = min(2*base, 2*time.Second)
	}
	b.reset()
	if d := b.next(); d > 100*time.Millisecond {
		t.Errorf("after reset pause = %v, want <= Min", d)
	}
	for i := 0; i < 100; i++ {
		if d := b.spread(time.Second); d < 0 || d > time.Second {
			t.Fatalf("spread = %v", d)
		}
	}
}

// Gateways with different ids draw different pauses (they do not reconnect in
// step); one id always draws the same ones.
func TestBackoffJitterSeededFromClientID(t *testing.T) {
	seq := func(id string) []time.Duration {
		b := newBackoff(Backoff{Min: time.Second, Max: time.Minute}, id)
		var out []time.Duration
		for i := 0; i < 8; i++ {
			out = append(out, b.next())
		}
		return out
	}
	a1, a2 := seq("gw-a"), seq("gw-a")
	for i := range a1 {
		if a1[i] != a2[i] {
			t.Fatalf("same id, different pauses: %v vs %v", a1, a2)
		}
	}
	// Among 200 gateways, the first pause takes many distinct values.
	first := map[time.Duration]bool{}
	for i := 0; i < 200; i++ {
		first[seq("gw-" + string(rune('a'+i%26)) + string(rune('a'+i/26)))[0]] = true
	}
	if len(first) < 190 {
		t.Errorf("200 gateways drew only %d distinct first pauses", len(first))
	}
}
