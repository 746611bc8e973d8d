package pulsesim

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/townlink/townlink/hardware/gpio"
	"github.com/townlink/townlink/hardware/gpiosim"
)

// ErrConfig reports an impossible train or toggle list.
var ErrConfig = errors.New("pulsesim: bad config")

// Period returns the period of a rate in hertz (200 → 5 ms).
func Period(hz float64) time.Duration { return time.Duration(float64(time.Second) / hz) }

// Bouncer draws contact bounce. A nil or zero Bouncer bounces nothing.
type Bouncer struct {
	Bounce  time.Duration // window after a clean edge in which the bounces fall
	Bounces int           // bounces per clean edge (each is two edges)
	rng     *rand.Rand
}

// NewBouncer returns a Bouncer with k bounces within window b, seeded.
func NewBouncer(b time.Duration, k int, seed uint64) *Bouncer {
	return &Bouncer{Bounce: b, Bounces: k, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Transition returns the edges of one transition at t to level l: the clean
// edge and its bounces.
func (b *Bouncer) Transition(t time.Time, l gpio.Level) []gpio.Edge {
	edges := []gpio.Edge{{Level: l, Time: t}}
	if b == nil || b.rng == nil || b.Bounces <= 0 || b.Bounce <= 0 {
		return edges
	}
	n := 2 * b.Bounces
	// 2k distinct offsets in (0, Bounce], sorted.
	span := int64(b.Bounce)
	if int64(n) > span {
		n = int(span) &^ 1
	}
	seen := make(map[int64]bool, n)
	offs := make([]int64, 0, n)
	for len(offs) < n {
		o := 1 + b.rng.Int64N(span)
		if !seen[o] {
			seen[o] = true
			offs = append(offs, o)
		}
	}
	slices.Sort(offs)
	lvl := l
	for _, o := range offs {
		lvl = !lvl
		edges = append(edges, gpio.Edge{Level: lvl, Time: t.Add(time.Duration(o))})
	}
	return edges
}

// Train is a periodic pulse train: a pulse every Period, high for High.
type Train struct {
	Start   time.Time     // time of the first pulse's leading edge
	Period  time.Duration // time between pulses (Period(200) for 200 Hz)
	High    time.Duration // pulse width; 0 means Period/2
	Pulses  int           // number of pulses; 0 means endless
	Bounce  time.Duration // bounce window after every clean edge
	Bounces int           // bounces per clean edge
	Seed    uint64
	// ActiveLow: the line idles high and a pulse pulls it low (a reed
	// contact to ground with a pull-up). Otherwise it idles low.
	ActiveLow bool
}

// Validate checks that the pulses and their bounces fit in the period.
func (t Train) Validate() error {
	high := t.high()
	switch {
	case t.Period <= 0:
		return fmt.Errorf("%w: period %v", ErrConfig, t.Period)
	case high <= 0 || high >= t.Period:
		return fmt.Errorf("%w: pulse width %v does not fit in period %v", ErrConfig, high, t.Period)
	case t.Pulses < 0 || t.Bounces < 0 || t.Bounce < 0:
		return fmt.Errorf("%w: negative pulses, bounces or bounce time", ErrConfig)
	case t.Bounces > 0 && (t.Bounce >= high || t.Bounce >= t.Period-high):
		return fmt.Errorf("%w: bounce time %v does not end before the next clean edge (high %v, low %v)", ErrConfig, t.Bounce, high, t.Period-high)
	}
	return nil
}

func (t Train) high() time.Duration {
	if t.High == 0 {
		return t.Period / 2
	}
	return t.High
}

// Idle is the line's level between pulses.
func (t Train) Idle() gpio.Level { return gpio.Level(t.ActiveLow) }

// Edges yields the train's edges in time order (endless when Pulses is 0).
// Call Validate first; an invalid train yields nothing.
func (t Train) Edges() iter.Seq[gpio.Edge] {
	return func(yield func(gpio.Edge) bool) {
		if t.Validate() != nil {
			return
		}
		b := NewBouncer(t.Bounce, t.Bounces, t.Seed)
		idle := t.Idle()
		for i := 0; t.Pulses == 0 || i < t.Pulses; i++ {
			lead := t.Start.Add(time.Duration(i) * t.Period)
			for _, e := range b.Transition(lead, !idle) {
				if !yield(e) {
					return
				}
			}
			for _, e := range b.Transition(lead.Add(t.high()), idle) {
				if !yield(e) {
					return
				}
			}
		}
	}
}

// End is the time the last pulse's trailing bounce is over (zero for an
// endless train).
func (t Train) End() time.Time {
	if t.Pulses == 0 {
		return time.Time{}
	}
	return t.Start.Add(time.Duration(t.Pulses-1)*t.Period + t.high() + t.Bounce)
}

// Step is one level change of a Toggles list.
type Step struct {
	After time.Duration // offset from Toggles.Start
	Level gpio.Level
}

// Toggles is a list of level changes: a door contact, a flood sensor.
type Toggles struct {
	Start   time.Time
	Initial gpio.Level // the line's level before the first step
	Steps   []Step     // in time order, each changing the level
	Bounce  time.Duration
	Bounces int
	Seed    uint64
}

// Validate checks the steps are in order, change the level, and do not
// overlap each other's bounce.
func (d Toggles) Validate() error {
	lvl := d.Initial
	var prev time.Duration = -1
	for i, s := range d.Steps {
		if s.Level == lvl {
			return fmt.Errorf("%w: step %d at %v does not change the level (%v)", ErrConfig, i, s.After, lvl)
		}
		if s.After < 0 || (i > 0 && s.After-prev <= d.Bounce) {
			return fmt.Errorf("%w: step %d at %v is not after the previous one and its bounce", ErrConfig, i, s.After)
		}
		lvl, prev = s.Level, s.After
	}
	return nil
}

// Edges yields the steps' edges with bounce. An invalid list yields
// nothing.
func (d Toggles) Edges() iter.Seq[gpio.Edge] {
	return func(yield func(gpio.Edge) bool) {
		if d.Validate() != nil {
			return
		}
		b := NewBouncer(d.Bounce, d.Bounces, d.Seed)
		for _, s := range d.Steps {
			for _, e := range b.Transition(d.Start.Add(s.After), s.Level) {
				if !yield(e) {
					return
				}
			}
		}
	}
}

// Play pushes edges into the simulated line, waiting while its queue is
// full, until the sequence ends or ctx does. It returns the number of
// edges pushed.
func Play(ctx context.Context, sim *gpiosim.Sim, edges iter.Seq[gpio.Edge]) (int, error) {
	n := 0
	for e := range edges {
		if err := sim.Push(ctx, e); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
