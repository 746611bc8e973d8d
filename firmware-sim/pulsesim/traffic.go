package pulsesim

import (
	"fmt"
	"iter"
	"math/rand/v2"
	"time"

	"github.com/townlink/townlink/hardware/gpio"
)

// Traffic defaults.
const (
	DefaultOccupancy = 300 * time.Millisecond
	DefaultGap       = 100 * time.Millisecond
)

// Traffic is a loop detector's output as vehicles pass: they arrive at
// random (a Poisson process, Rate a second on average), and the output is
// high while a vehicle is over the loop (Occupancy). A vehicle that
// arrives before the output has been low for Gap (the detector's recovery)
// is reported when that time is over, so every vehicle is one pulse.
type Traffic struct {
	Start     time.Time     // arrivals are counted from here
	Rate      float64       // mean vehicles per second
	Occupancy time.Duration // high time per vehicle; 0 means DefaultOccupancy
	Gap       time.Duration // shortest low time; 0 means DefaultGap
	Vehicles  int           // number of vehicles; 0 means endless
	Bounce    time.Duration // bounce window of the detector's relay contact
	Bounces   int           // bounces per clean edge
	Seed      uint64
}

func (t Traffic) occupancy() time.Duration {
	if t.Occupancy == 0 {
		return DefaultOccupancy
	}
	return t.Occupancy
}

func (t Traffic) gap() time.Duration {
	if t.Gap == 0 {
		return DefaultGap
	}
	return t.Gap
}

// Validate checks the rate and that bounces end before the next clean edge.
func (t Traffic) Validate() error {
	switch {
	case !(t.Rate > 0) || t.Rate > 1000:
		return fmt.Errorf("%w: traffic rate %v vehicles/s (want more than 0, at most 1000)", ErrConfig, t.Rate)
	case t.Occupancy < 0 || t.Gap < 0 || t.Vehicles < 0 || t.Bounce < 0 || t.Bounces < 0:
		return fmt.Errorf("%w: negative occupancy, gap, vehicles or bounce", ErrConfig)
	case t.Bounces > 0 && (t.Bounce >= t.occupancy() || t.Bounce >= t.gap()):
		return fmt.Errorf("%w: bounce time %v does not end before the next clean edge (occupancy %v, gap %v)", ErrConfig, t.Bounce, t.occupancy(), t.gap())
	}
	return nil
}

// Edges yields the detector output's edges in time order (endless when
// Vehicles is 0). The line idles low. An invalid Traffic yields nothing.
func (t Traffic) Edges() iter.Seq[gpio.Edge] {
	return func(yield func(gpio.Edge) bool) {
		if t.Validate() != nil {
			return
		}
		rng := rand.New(rand.NewPCG(t.Seed, t.Seed^0x5851f42d4c957f2d))
		b := NewBouncer(t.Bounce, t.Bounces, t.Seed+1)
		arrival := t.Start
		var free time.Time // earliest next leading edge
		for i := 0; t.Vehicles == 0 || i < t.Vehicles; i++ {
			arrival = arrival.Add(time.Duration(rng.ExpFloat64() / t.Rate * float64(time.Second)))
			lead := arrival
			if lead.Before(free) {
				lead = free
			}
			trail := lead.Add(t.occupancy())
			free = trail.Add(t.gap())
			for _, e := range b.Transition(lead, gpio.High) {
				if !yield(e) {
					return
				}
			}
			for _, e := range b.Transition(trail, gpio.Low) {
				if !yield(e) {
					return
				}
			}
		}
	}
}
