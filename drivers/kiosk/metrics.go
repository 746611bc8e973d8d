package kiosk

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/townlink/townlink/drivers"
)

// Metrics returns one telemetry reading per known service for the window
// (now − Window, now] of the gateway's clock, and forgets older samples
// and tickets unheard of for TicketTTL. Run calls it every Window; a test
// may call it with its own clock.
//
// Points: service, window_s, waiting (tickets waiting now), windows_open
// (open windows that declared the service, plus open windows that
// declared none: a 综合窗口 serves every service), handled_per_h
// (service.finished in the window × 1 h / Window, 2 places, half up),
// and when there were any: wait_p50_s and wait_p90_s (first calls in the
// window; nearest rank: the ⌈p·n/100⌉-th smallest of n waits, in seconds
// to the ms) and rating_avg (mean rating in the window, 2 places, half
// up).
func (k *Kiosk) Metrics(now time.Time) []drivers.Reading {
	k.mu.Lock()
	defer k.mu.Unlock()
	from := now.Add(-k.window)
	k.expire(now)
	names := make([]string, 0, len(k.services))
	for name := range k.services {
		names = append(names, name)
	}
	sort.Strings(names)
	waiting := map[string]int64{}
	for _, t := range k.tickets {
		if t.waiting {
			waiting[t.service]++
		}
	}
	out := make([]drivers.Reading, 0, len(names))
	for _, name := range names {
		s := k.services[name]
		s.waits, s.done, s.ratings = prune(s.waits, from), prune(s.done, from), prune(s.ratings, from)
		waits, done, ratings := upTo(s.waits, now), upTo(s.done, now), upTo(s.ratings, now)
		open := int64(0)
		for _, w := range k.windows {
			if w.open && (len(w.services) == 0 || slices.Contains(w.services, name)) {
				open++
			}
		}
		v := map[string]drivers.Value{
			"service":       drivers.Text(name),
			"window_s":      drivers.Dec(k.window.Milliseconds(), -3),
			"waiting":       drivers.Int(waiting[name]),
			"windows_open":  drivers.Int(open),
			"handled_per_h": drivers.Dec(divRound(int64(len(done))*int64(time.Hour/time.Millisecond)*100, k.window.Milliseconds()), -2),
		}
		if n := len(waits); n > 0 {
			w := make([]int64, n)
			for i, x := range waits {
				w[i] = x.v
			}
			slices.Sort(w)
			v["wait_p50_s"] = seconds(NearestRank(w, 50))
			v["wait_p90_s"] = seconds(NearestRank(w, 90))
		}
		if n := int64(len(ratings)); n > 0 {
			sum := int64(0)
			for _, r := range ratings {
				sum += r.v
			}
			v["rating_avg"] = drivers.Dec(divRound(sum*100, n), -2)
		}
		out = append(out, drivers.Reading{Device: k.device, Class: drivers.Telemetry, Time: now, Values: v})
	}
	return out
}

// NearestRank returns the p-th percentile of sorted (ascending, non-empty)
// values by the nearest-rank method: the ⌈p·n/100⌉-th smallest (at least
// the first).
func NearestRank(sorted []int64, p int) int64 {
	r := (p*len(sorted) + 99) / 100
	if r < 1 {
		r = 1
	}
	return sorted[r-1]
}

// divRound is a/b rounded half up, for a ≥ 0, b > 0.
func divRound(a, b int64) int64 { return (2*a + b) / (2 * b) }

// prune drops the samples at or before from (samples arrive in time
// order, older ones first).
func prune(s []sample, from time.Time) []sample {
	i := 0
	for i < len(s) && !s[i].at.After(from) {
		i++
	}
	if i == 0 {
		return s
	}
	return slices.Clone(s[i:]) // let the old backing array go
}

// upTo is the part of s at or before to (a caller's clock may go back:
// later samples stay for the next window).
func upTo(s []sample, to time.Time) []sample {
	j := len(s)
	for j > 0 && s[j-1].at.After(to) {
		j--
	}
	return s[:j]
}

func (k *Kiosk) expire(now time.Time) {
	for no, t := range k.tickets {
		if now.Sub(t.seen) > TicketTTL {
			delete(k.tickets, no)
		}
	}
	for no, w := range k.windows {
		if now.Sub(w.seen) > TicketTTL {
			delete(k.windows, no)
		}
	}
}

// The long_wait event (its "event" point) and the point that says
// whether a ticket over the limit is waiting: the gateway's default rule
// kiosk-wait raises and clears the alarm from them.
const (
	EventLongWait = "long_wait"
	PointActive   = "active"
)

// LongWaits returns the long_wait events due at now: one with active
// true for each ticket that has just waited (by the gateway's clock, since
// it was issued or transferred) longer than WaitAlarm without being
// called, and one with active false once no ticket over the limit is
// waiting any more. Each carries over, the tickets waiting past the limit.
// The gateway's rules engine raises and clears the kiosk's alarm from
// them (default rule kiosk-wait). The first call after New says active
// false when no ticket is over: a gateway restart forgets the tickets,
// and this clears an alarm raised before it. With WaitAlarm 0 it returns
// nothing.
func (k *Kiosk) LongWaits(now time.Time) []drivers.Reading {
	if k.waitAlarm <= 0 {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []drivers.Reading
	over := int64(0)
	for no, t := range k.tickets {
		if !t.waiting {
			continue
		}
		w := now.Sub(t.queued)
		if t.alarmed {
			over++
			continue
		}
		if w > k.waitAlarm {
			t.alarmed = true
			over++
			out = append(out, drivers.Reading{Device: k.device, Class: drivers.Event, Time: now, Values: map[string]drivers.Value{
				"event":     drivers.Text(EventLongWait),
				PointActive: drivers.Bool(true),
				"ticket":    drivers.Text(no),
				"service":   drivers.Text(t.service),
				"wait_s":    seconds(w.Milliseconds()),
			}})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := out[i].Values["ticket"].AsText()
		b, _ := out[j].Values["ticket"].AsText()
		return a < b
	})
	for i := range out {
		out[i].Values["over"] = drivers.Int(over)
	}
	if over == 0 && k.over {
		out = append(out, drivers.Reading{Device: k.device, Class: drivers.Event, Time: now, Values: map[string]drivers.Value{
			"event": drivers.Text(EventLongWait), PointActive: drivers.Bool(false), "over": drivers.Int(0),
		}})
	}
	k.over = over > 0
	return out
}

// rearm undoes what a long_wait event that was not kept did: its ticket
// may alarm again, and a lost active false is said again.
func (k *Kiosk) rearm(r drivers.Reading) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if active, _ := r.Values[PointActive].AsBool(); !active {
		k.over = true
		return
	}
	no, _ := r.Values["ticket"].AsText()
	if t := k.tickets[no]; t != nil {
		t.alarmed = false
	}
}

// alarmStep is how often Run looks for waits over WaitAlarm.
func (k *Kiosk) alarmStep() time.Duration {
	step := min(k.window, 10*time.Second)
	if k.waitAlarm > 0 {
		step = min(step, max(k.waitAlarm/10, time.Second))
	}
	return step
}

// Run emits the derived telemetry every Window and long_wait events as they
// fall due (checked at once, then every min(Window, 10 s, WaitAlarm/10),
// at least 1 s),
// until ctx ends. It returns ctx.Err() then, or the first emit error
// (a long_wait event that emit refused is emitted again on the next run).
func (k *Kiosk) Run(ctx context.Context, emit func(drivers.Reading) error) error {
	tick := time.NewTicker(k.alarmStep())
	defer tick.Stop()
	next := k.now().Add(k.window)
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
		now := k.now()
		waits := k.LongWaits(now)
		for i, r := range waits {
			if err := emit(r); err != nil {
				for _, w := range waits[i:] {
					k.rearm(w)
				}
				no, _ := r.Values["ticket"].AsText()
				return fmt.Errorf("kiosk %s: long_wait event (ticket %q): %w", k.device, no, err)
			}
		}
		if now.Before(next) {
			continue
		}
		next = next.Add(k.window)
		if next.Before(now) { // the clock jumped: realign
			next = now.Add(k.window)
		}
		for _, r := range k.Metrics(now) {
			if err := emit(r); err != nil {
				return fmt.Errorf("kiosk %s: metrics: %w", k.device, err)
			}
		}
	}
}
