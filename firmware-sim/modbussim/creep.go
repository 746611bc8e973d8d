package modbussim

import (
	"math"
	"math/rand/v2"
	"time"
)

// Creep is a sensor drifting past a limit: a holding register (uint16,
// raw = value / Scale) moves linearly from From to To over Over, from the
// first request on, with uniform noise of ±Noise (a fraction: 0.02 is
// ±2 %) on top; after Over it stays at To, noise included.
type Creep struct {
	Register uint16
	From, To float64
	Over     time.Duration
	Noise    float64
	Scale    float64 // engineering units per count; 0 means 1
	Seed     uint64
}

// Animation returns the function to pass to Unit.Animate.
func (c Creep) Animation() func(time.Time, *Unit) {
	rng := rand.New(rand.NewPCG(c.Seed, 0xc7ee9))
	scale := c.Scale
	if scale == 0 {
		scale = 1
	}
	var start time.Time
	return func(now time.Time, u *Unit) {
		if start.IsZero() {
			start = now
		}
		f := 1.0
		if c.Over > 0 {
			f = min(float64(now.Sub(start))/float64(c.Over), 1)
		}
		v := c.From + (c.To-c.From)*f
		v *= 1 + (rng.Float64()*2-1)*c.Noise
		raw := math.Round(v / scale)
		u.SetHolding(c.Register, uint16(min(max(raw, 0), 65535)))
	}
}
