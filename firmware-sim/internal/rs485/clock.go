package rs485

import "time"

// Clock is a meter's real-time clock: a time source plus an offset and a
// drift. The zero Clock runs with time.Now and no offset. It is not safe
// for concurrent use: the meter owning it guards it with its lock.
type Clock struct {
	now      func() time.Time
	off      time.Duration // meter clock = now + off + drift since base
	base     time.Time
	driftPPM float64
}

// NewClock returns a clock on now (nil: time.Now) that reads the host's
// time, in time.Local.
func NewClock(now func() time.Time) Clock {
	if now == nil {
		now = time.Now
	}
	return Clock{now: now, base: now()}
}

// Now is the time source's time (not the meter's).
func (c *Clock) Now() time.Time {
	if c.now == nil {
		return time.Now()
	}
	return c.now()
}

// SetSource replaces the time source and returns its time; the meter clock
// keeps its offset from it, and drift counts from now.
func (c *Clock) SetSource(now func() time.Time) time.Time {
	c.now = now
	c.base = c.Now()
	return c.base
}

// At is the meter's clock when the time source reads now, in time.Local.
func (c *Clock) At(now time.Time) time.Time {
	drift := time.Duration(float64(now.Sub(c.base)) * c.driftPPM / 1e6)
	return now.Add(c.off + drift).In(time.Local)
}

// Set makes the meter's clock read t when the time source reads now.
func (c *Clock) Set(t, now time.Time) {
	c.off = t.Sub(now)
	c.base = now
}

// Adjust moves the meter's clock by offset at now and makes it gain
// driftPPM parts per million from then on (negative: lose).
func (c *Clock) Adjust(offset time.Duration, driftPPM float64, now time.Time) {
	c.Set(c.At(now).Add(offset), now)
	c.driftPPM = driftPPM
}
