package rs485

import (
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	host := time.Date(2025, 3, 1, 12, 0, 0, 0, time.Local)
	now := func() time.Time { return host }
	c := NewClock(now)
	if got := c.At(c.Now()); !got.Equal(host) {
		t.Fatalf("a new clock reads %v, want the host's %v", got, host)
	}
	c.Set(host.Add(-time.Hour), host)
	host = host.Add(10 * time.Minute)
	if got, want := c.At(c.Now()), host.Add(-time.Hour); !got.Equal(want) {
		t.Errorf("after Set: %v, want %v", got, want)
	}
	c.Adjust(time.Minute, 100, host) // +1 min, gains 100 ppm
	host = host.Add(10000 * time.Second)
	if got, want := c.At(c.Now()), host.Add(-time.Hour+time.Minute+time.Second); !got.Equal(want) {
		t.Errorf("after Adjust and 10000 s: %v, want %v", got, want)
	}
	// A new time source keeps the offset set by Set and Adjust; the drift
	// restarts from it.
	other := host.Add(time.Hour)
	before := -time.Hour + time.Minute
	if base := c.SetSource(func() time.Time { return other }); !base.Equal(other) {
		t.Errorf("SetSource returned %v, want %v", base, other)
	}
	if got := c.At(c.Now()).Sub(other); got != before {
		t.Errorf("offset %v after SetSource, want %v", got, before)
	}
	var zero Clock
	if d := time.Since(zero.Now()); d < 0 || d > time.Minute {
		t.Errorf("the zero Clock's source is not time.Now: %v", d)
	}
}
