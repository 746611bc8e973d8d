package uplink

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// ErrPacer reports invalid Pacer settings.
var ErrPacer = errors.New("uplink: invalid pacer")

// Pacer is a token bucket, one token per record, shared by the Forwarders
// of several streams: their backlogs together drain at Rate records per
// second, with bursts of up to Burst records. Live records never take
// tokens. It is safe for concurrent use.
//
// Takers reserve their tokens at once and wait until the bucket has
// refilled that far, so concurrent takers are served in turn and the total
// never exceeds Rate×elapsed + Burst.
type Pacer struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	tokens  float64 // may go negative: reserved by waiting takers
	last    time.Time
	granted uint64
}

// NewPacer returns a Pacer of rate records per second (> 0) and burst
// records (≤ 0: rate/10, at least 1). A Forwarder asks for at most Burst
// records per batch, so a burst below its MaxBatch makes smaller batches.
func NewPacer(rate float64, burst int) (*Pacer, error) {
	if !(rate > 0) || math.IsInf(rate, 0) {
		return nil, fmt.Errorf("%w: rate %v records/s, want > 0", ErrPacer, rate)
	}
	if burst <= 0 {
		burst = max(1, int(rate/10))
	}
	p := &Pacer{rate: rate, burst: float64(burst), now: time.Now}
	p.tokens = p.burst
	p.last = p.now()
	return p, nil
}

// Rate is the configured rate in records per second.
func (p *Pacer) Rate() float64 { return p.rate }

// Burst is the most records one take may ask for.
func (p *Pacer) Burst() int { return int(p.burst) }

// Granted returns how many tokens were taken so far (counted once their
// wait is over): never more than Rate×elapsed + Burst.
func (p *Pacer) Granted() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.granted
}

func (p *Pacer) advanceLocked() {
	now := p.now()
	if dt := now.Sub(p.last).Seconds(); dt > 0 {
		p.tokens = min(p.burst, p.tokens+dt*p.rate)
	}
	p.last = now
}

// take reserves n tokens (1 ≤ n ≤ Burst) and waits until they are covered.
// If ctx ends first, the reservation is returned and take returns ctx.Err().
func (p *Pacer) take(ctx context.Context, n int) error {
	if n <= 0 {
		return nil
	}
	f := min(float64(n), p.burst)
	p.mu.Lock()
	p.advanceLocked()
	p.tokens -= f
	wait := time.Duration(0)
	if p.tokens < 0 {
		wait = time.Duration(-p.tokens / p.rate * float64(time.Second))
	}
	if wait <= 0 {
		p.granted += uint64(n)
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		p.mu.Lock()
		p.granted += uint64(n)
		p.mu.Unlock()
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		p.advanceLocked()
		p.tokens = min(p.burst, p.tokens+f)
		p.mu.Unlock()
		return ctx.Err()
	}
}
