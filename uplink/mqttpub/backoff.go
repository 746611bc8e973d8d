package mqttpub

import (
	"hash/fnv"
	"math/rand/v2"
	"time"
)

// backoff is exponential with jitter. Its random source is seeded from the
// client id, so two gateways draw different pauses after the same outage
// (they do not reconnect in step) while one gateway's pauses are
// reproducible in tests. Not safe for concurrent use: the connection
// goroutine owns it.
type backoff struct {
	min, max time.Duration
	cur      time.Duration // next base pause; 0 = reset
	rnd      *rand.Rand
}

func newBackoff(b Backoff, clientID string) *backoff {
	h := fnv.New64a()
	h.Write([]byte(clientID))
	seed := h.Sum64()
	return &backoff{min: b.Min, max: b.Max, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// next returns the next pause, drawn from [d/2, d], and doubles d up to max.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	}
	d := b.cur
	if b.cur < b.max {
		b.cur = min(2*b.cur, b.max)
	}
	return b.jitter(d)
}

// jitter returns a pause drawn from [d/2, d].
func (b *backoff) jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + time.Duration(b.rnd.Int64N(int64(d-half)+1))
}

// spread returns a pause drawn from [0, d], used before the first reconnect
// after a lost connection so gateways cut off at the same moment spread out.
func (b *backoff) spread(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(b.rnd.Int64N(int64(d) + 1))
}

func (b *backoff) reset() { b.cur = 0 }
