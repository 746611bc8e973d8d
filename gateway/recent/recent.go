// Package recent keeps the last hour of every device's numeric points in
// memory, for the local page's charts and the last values `townlink
// status` prints. It is not a store: nothing survives a restart, and the
// durable record of every reading is the uplink queue.
//
// Memory is bounded: each device/point keeps at most Window/Step samples
// (361 by default, 16 bytes each), a newer sample in the same Step-long
// slot as the last kept one replaces it, and a reading adds no series beyond MaxSeries.
package recent

import (
	"math"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/townlink/townlink/drivers"
)

// Defaults.
const (
	DefaultWindow    = time.Hour
	DefaultStep      = 10 * time.Second
	DefaultMaxSeries = 1024
)

// Options bound the history. Zero values take the defaults.
type Options struct {
	Window    time.Duration // how far back a series goes (1 h)
	Step      time.Duration // the finest spacing of kept samples (10 s)
	MaxSeries int           // device/point series kept at most (1024)
}

// Sample is one value of a point at a time (Unix milliseconds).
type Sample struct {
	T int64   `json:"t"`
	V float64 `json:"v"`
}

// Point is a point's last value, exact as the device gave it.
type Point struct {
	Name  string    `json:"name"`
	Value string    `json:"value"`
	Time  time.Time `json:"time"`
	// Numeric says whether the point is charted (Series has samples).
	Numeric bool `json:"numeric"`
}

type key struct{ dev, point string }

type series struct {
	last    Point
	samples []Sample // oldest first, at most cap
}

// Store is the in-memory history. Safe for concurrent use.
type Store struct {
	o   Options
	max int // samples per series

	mu     sync.Mutex
	series map[key]*series
	now    func() time.Time
}

// New returns an empty store.
func New(o Options) *Store {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Step <= 0 {
		o.Step = DefaultStep
	}
	if o.MaxSeries <= 0 {
		o.MaxSeries = DefaultMaxSeries
	}
	n := int(o.Window/o.Step) + 1
	return &Store{o: o, max: n, series: map[key]*series{}, now: time.Now}
}

// Observe records readings (the pipeline calls it once they are queued).
// A reading without a time counts as now. An alarm record is not a
// device's reading (its points are the alarm's: rule, severity, value,
// message…) and is left out.
func (s *Store) Observe(rs []drivers.Reading) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range rs {
		r := &rs[i]
		if r.Class == drivers.Alarm {
			continue
		}
		t := r.Time
		if t.IsZero() {
			t = now
		}
		for name, v := range r.Values {
			s.add(key{r.Device, name}, t, v)
		}
	}
}

func (s *Store) add(k key, t time.Time, v drivers.Value) {
	sr := s.series[k]
	if sr == nil {
		if len(s.series) >= s.o.MaxSeries {
			return
		}
		sr = &series{}
		s.series[k] = sr
	}
	f, num := Float(v)
	if !sr.last.Time.IsZero() && t.Before(sr.last.Time) {
		return // an older reading (a late field message) does not replace a newer one
	}
	sr.last = Point{Name: k.point, Value: Text(v), Time: t, Numeric: num}
	if !num {
		sr.samples = nil
		return
	}
	ms := t.UnixMilli()
	step := s.o.Step.Milliseconds()
	if n := len(sr.samples); n > 0 && sr.samples[n-1].T/step == ms/step {
		sr.samples[n-1] = Sample{T: ms, V: f} // one sample per step: the newest
		return
	}
	if len(sr.samples) >= s.max {
		copy(sr.samples, sr.samples[1:])
		sr.samples = sr.samples[:len(sr.samples)-1]
	}
	sr.samples = append(sr.samples, Sample{T: ms, V: f})
}

// Text is v as townlink status, read and the local page print it: as
// v.String(), but a float that a float32 holds exactly (a float32
// register) with float32 precision — 30.026749, not 30.026748657226562 —
// as townlink tail prints it from the wire.
func Text(v drivers.Value) string {
	if f, ok := v.AsFloat(); ok && float64(float32(f)) == f {
		return strconv.FormatFloat(f, 'g', -1, 32)
	}
	return v.String()
}

// Float is v as a float for a chart; false for text, and for a value
// with no finite float form.
func Float(v drivers.Value) (float64, bool) {
	switch v.Kind() {
	case drivers.KindDecimal:
		f, _ := new(big.Float).SetRat(v.Rat()).Float64()
		return f, !math.IsInf(f, 0)
	case drivers.KindInt:
		i, _ := v.AsInt()
		return float64(i), true
	case drivers.KindFloat:
		f, _ := v.AsFloat()
		return f, !math.IsInf(f, 0) && !math.IsNaN(f)
	case drivers.KindBool:
		if b, _ := v.AsBool(); b {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// Last returns every point's last value of a device, by name.
func (s *Store) Last(device string) []Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Point
	for k, sr := range s.series {
		if k.dev == device {
			out = append(out, sr.last)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Series returns a point's samples of the last Window, oldest first.
func (s *Store) Series(device, point string) []Sample {
	cut := s.now().Add(-s.o.Window).UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	sr := s.series[key{device, point}]
	if sr == nil {
		return nil
	}
	i := sort.Search(len(sr.samples), func(i int) bool { return sr.samples[i].T >= cut })
	return slices.Clone(sr.samples[i:])
}
