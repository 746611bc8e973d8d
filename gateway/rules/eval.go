package rules

import (
	"math"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/config"
)

// obs is what a track saw last: the point that crossed, its value (a rate
// for rate rules) and the limit.
type obs struct {
	point        string
	value, limit float64
	has          bool
}

// track is one rule on one target (a device, or a group rule's scope).
// What a reading touches is one cache line (a device's tracks lie side by
// side); the rest, used when an alarm is pending, raised or cleared, is
// apart. Times are Unix nanoseconds, 0 for none.
type track struct {
	rule                 *rule
	alarm                *Alarm // active (or suppressed) alarm
	pendSince            int64  // raise-condition holding since
	hist                 []ring // rate rules: recent samples, per point of the rule
	raiseCond, clearCond bool
	*trackCold
}

// trackCold is the part of a track a reading that crosses nothing does
// not touch.
type trackCold struct {
	clearSince int64 // clear-condition holding since (while active)
	obs        obs
	ev         *eventState // event rules only
	key        string
	dev        *device // nil for a group
	target     string
}

type sample struct {
	v float64
	t int64 // Unix ns
}

// maxSamples bounds a rate rule's history per point: the rate is taken
// over the last Over or the last maxSamples readings, whichever is shorter.
const maxSamples = 32

// ring holds a point's recent samples, oldest first, without moving them
// (maxSamples is a power of two).
type ring struct {
	buf     [maxSamples]sample
	head, n uint
}

func (r *ring) at(i uint) sample { return r.buf[(r.head+i)&(maxSamples-1)] }

func (r *ring) push(x sample) {
	if r.n == maxSamples {
		r.head = (r.head + 1) & (maxSamples - 1)
		r.n--
	}
	r.buf[(r.head+r.n)&(maxSamples-1)] = x
	r.n++
}

func (r *ring) restart(x sample) { r.head, r.n = 0, 0; r.push(x) }

func trackKey(r *rule, target string) string { return r.cfg.ID + "|" + target }

// trackFor finds the track of rule r on device d (nil: the group's).
func (r *rule) trackFor(d *device) *track {
	if d == nil {
		return r.group
	}
	for j, x := range r.devs {
		if x == d {
			return r.tracks[j]
		}
	}
	return nil
}

// num is a value as a number: decimals, ints and floats as they are,
// booleans as 0 or 1; text is not a number.
func num(v drivers.Value) (float64, bool) {
	switch v.Kind() {
	case drivers.KindDecimal:
		m, exp, _ := v.Decimal()
		return float64(m) * math.Pow10(int(exp)), true
	case drivers.KindInt:
		i, _ := v.AsInt()
		return float64(i), true
	case drivers.KindFloat:
		f, _ := v.AsFloat()
		return f, !math.IsNaN(f) && !math.IsInf(f, 0)
	case drivers.KindBool:
		if b, _ := v.AsBool(); b {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// observe evaluates one reading of device d.
func (e *Engine) observe(trans []transition, d *device, r *drivers.Reading, now time.Time) []transition {
	t := r.Time
	if t.IsZero() || r.DeviceTime {
		t = now // a device's clock may be off; rates use the gateway's
	}
	d.seen = now
	e.cur++
	for _, pt := range d.named {
		i, name := pt.idx, pt.name
		v, ok := r.Values[name]
		if !ok {
			continue
		}
		if f, ok := num(v); ok {
			e.vals[i], e.gen[i] = f, e.cur
		} else if s, ok := v.AsText(); ok && d.keep {
			d.lastText[name] = s
		}
	}
	for _, ref := range d.rules {
		cfg, tr := ref.r.cfg, ref.t
		switch cfg.Kind {
		case config.RuleStale:
			if len(cfg.Points) > 0 {
				if _, ok := r.Values[cfg.Points[0]]; ok {
					d.seenPt[ref.r.pidx[0]] = now.UnixNano()
				}
			}
			if tr.alarm != nil || tr.raiseCond { // else Tick watches the silence
				trans = e.evalStale(trans, tr, d, now)
			}
		case config.RuleExpr:
			trans = e.evalExpr(trans, tr, d, r, t, now)
		case config.RuleEvent:
			trans = e.evalEvent(trans, tr, d, r, now)
		default:
			trans = e.evalCond(trans, tr, d, r, t, now)
		}
	}
	if d.keep {
		for i, g := range e.gen {
			if g == e.cur {
				d.lastv[i], d.lastok[i] = e.vals[i], true
			}
		}
		d.lastT = t
	}
	for _, g := range d.groups {
		trans = e.evalGroup(trans, g, now)
	}
	return trans
}

// crosses applies the rule's limit to x: up is the raise-condition, down
// the clear-condition (the limit moved back by the hysteresis).
func crosses(cfg *config.Rule, x float64) (up, down bool, limit float64) {
	if cfg.Above != nil {
		limit = *cfg.Above
		return x > limit, x <= limit-cfg.Hysteresis, limit
	}
	limit = *cfg.Below
	return x < limit, x >= limit+cfg.Hysteresis, limit
}

// evalCond evaluates threshold, rate and window rules.
func (e *Engine) evalCond(trans []transition, tr *track, d *device, r *drivers.Reading, t, now time.Time) []transition {
	ru := tr.rule
	cfg := ru.cfg
	raise, clear, seen := false, true, false
	var o obs
	for i, p := range cfg.Points {
		pi := ru.pidx[i]
		if e.gen[pi] != e.cur {
			continue
		}
		v := e.vals[pi]
		x, ok := v, true
		if cfg.Rate {
			if x, ok = tr.rate(i, v, t, cfg); !ok {
				continue
			}
		}
		seen = true
		up, down, lim := crosses(cfg, x)
		if up && !raise {
			raise, o = true, obs{point: p, value: x, limit: lim, has: true}
		}
		if !down {
			clear = false
		}
		if !o.has {
			o = obs{point: p, value: x, limit: lim, has: true}
		}
	}
	if !seen {
		return trans
	}
	if cfg.Kind == config.RuleWindow && !e.inWindow(ru, now) {
		raise, clear = false, true
	}
	tr.raiseCond, tr.clearCond = raise, clear
	if !raise && tr.alarm == nil && tr.pendSince == 0 {
		return trans // the common reading: nothing held, nothing to hold
	}
	return e.step(trans, tr, raise && !e.inhibited(ru, d, now), clear, now, o)
}

// rate adds a sample of point i and returns the change per Per, measured
// over the last Over (or maxSamples). A counter that goes down was reset
// or replaced, and one that jumps above MaxRate was replaced: both start
// a new baseline.
func (tr *track) rate(i int, v float64, t time.Time, cfg *config.Rule) (float64, bool) {
	tn := t.UnixNano()
	if tr.hist == nil {
		tr.hist = make([]ring, len(cfg.Points))
	}
	h := &tr.hist[i]
	if h.n > 0 {
		last := h.at(h.n - 1)
		if tn <= last.t {
			return 0, false
		}
		if cfg.Counter && v < last.v {
			h.restart(sample{v, tn})
			return 0, false
		}
	}
	h.push(sample{v, tn})
	cut := tn - int64(cfg.Over)
	for h.n > 2 && h.at(1).t <= cut {
		h.head = (h.head + 1) & (maxSamples - 1)
		h.n--
	}
	if h.n < 2 {
		return 0, false
	}
	first := h.at(0)
	x := (v - first.v) / float64(tn-first.t) * float64(cfg.Per)
	if cfg.Counter && cfg.MaxRate != nil && x > *cfg.MaxRate {
		h.restart(sample{v, tn})
		return 0, false
	}
	return x, true
}

// clockAt sets mod and wday for now (once per now).
func (e *Engine) clockAt(now time.Time) {
	if e.modAt.IsZero() || now.Before(e.modAt) || !now.Before(e.modTo) {
		lt := now.In(e.loc)
		e.mod, e.wday = lt.Hour()*60+lt.Minute(), int(lt.Weekday())
		e.modAt = now.Add(-time.Duration(lt.Second())*time.Second - time.Duration(lt.Nanosecond()))
		e.modTo = e.modAt.Add(time.Minute)
	}
}

// inWindow reports whether now is inside the rule's daily window.
func (e *Engine) inWindow(ru *rule, now time.Time) bool {
	e.clockAt(now)
	m := e.mod
	from, to := ru.cfg.From, ru.cfg.To
	if from < to {
		return m >= from && m < to
	}
	return m >= from || m < to
}

// inhibited reports whether a group rule that inhibits ru holds (pending
// or raised) over a scope with d in it.
func (e *Engine) inhibited(ru *rule, d *device, now time.Time) bool {
	for _, g := range ru.inhibitedBy {
		if d != nil && !g.cfg.Scope.Match(d.cfg) {
			continue
		}
		if gt := g.group; gt.raiseCond || gt.alarm != nil {
			return true
		}
	}
	return false
}

// silence is how long d may stay silent for rule ru.
func silence(ru *rule, d *device) time.Duration {
	if ru.cfg.After > 0 {
		return ru.cfg.After
	}
	return time.Duration(ru.cfg.Intervals) * d.cfg.Interval
}

// evalStale: no reading from d (or of the point) for the rule's silence.
func (e *Engine) evalStale(trans []transition, tr *track, d *device, now time.Time) []transition {
	ru := tr.rule
	seen := d.seen
	if len(ru.cfg.Points) > 0 {
		seen = e.start
		if s := d.seenPt[ru.pidx[0]]; s != 0 {
			seen = time.Unix(0, s)
		}
	}
	lim := silence(ru, d)
	quiet := now.Sub(seen)
	silent := lim > 0 && quiet >= lim
	tr.raiseCond, tr.clearCond = silent, !silent
	o := obs{value: quiet.Seconds(), limit: lim.Seconds(), has: true}
	if len(ru.cfg.Points) > 0 {
		o.point = ru.cfg.Points[0]
	}
	return e.step(trans, tr, silent && !e.inhibited(ru, d, now), !silent, now, o)
}

// evalGroup: every device of the scope dark (all its points below the
// limit) or silent at once. Until every device has been read or has been
// silent long enough (after a start), the group is not judged.
func (e *Engine) evalGroup(trans []transition, g *rule, now time.Time) []transition {
	cfg := g.cfg
	all := len(g.devs) > 0
	for _, d := range g.devs {
		silent := (cfg.Intervals > 0 || cfg.After > 0) && now.Sub(d.seen) >= silence(g, d)
		if silent {
			continue
		}
		if d.lastT.IsZero() {
			return trans // not known yet
		}
		dark := len(cfg.Points) > 0
		for _, i := range g.pidx {
			if !d.lastok[i] || d.lastv[i] >= *cfg.Below {
				dark = false
				break
			}
		}
		if !dark {
			all = false
			break
		}
	}
	tr := g.group
	tr.raiseCond, tr.clearCond = all, !all
	o := obs{value: float64(len(g.devs)), has: false}
	return e.step(trans, tr, all, !all, now, o)
}

// evalExpr runs an expression rule on a reading (from the device's
// second reading on, so that prev and dt mean something).
func (e *Engine) evalExpr(trans []transition, tr *track, d *device, r *drivers.Reading, t, now time.Time) []transition {
	ru := tr.rule
	if d.lastT.IsZero() {
		return trans
	}
	env, prev := ru.env, ru.prev
	for _, xv := range ru.xvars {
		i, p := xv.idx, xv.name
		fresh := e.gen[i] == e.cur // read now (a number or a bool)
		switch {
		case !ru.usesPrev:
		case d.lastok[i]:
			prev[p] = d.lastv[i]
		default:
			delete(prev, p)
		}
		switch xv.kind {
		case varText:
			s, ok := r.Values[p].AsText()
			if !ok {
				s = d.lastText[p]
			}
			env[p] = s
		case varBool:
			b := d.lastv[i] != 0
			if fresh {
				b = e.vals[i] != 0
			}
			env[p] = b
		default:
			f := d.lastv[i]
			if fresh {
				f = e.vals[i]
			}
			env[p] = f
		}
	}
	if ru.usesDT {
		env["dt"] = t.Sub(d.lastT).Seconds()
	}
	// The rest changes seldom: written when it does, if the expression
	// uses it.
	if ru.usesClock {
		e.clockAt(now)
		if m := e.wday*1440 + e.mod + 1; ru.envMin != m {
			env["hour"], env["minute"], env["weekday"], ru.envMin = e.mod/60, e.mod%60, e.wday, m
		}
	}
	if ru.envDev != d && ru.usesDevice {
		env["device"], ru.envDev = d.cfg.ID, d
	}
	out, err := e.vm.Run(ru.prog, env)
	if err != nil {
		e.log.Warn("rule expression failed", "rule", ru.cfg.ID, "device", d.cfg.ID, "err", err)
		return trans
	}
	res, _ := out.(bool)
	tr.raiseCond, tr.clearCond = res, !res
	if !res && tr.alarm == nil && tr.pendSince == 0 {
		return trans
	}
	return e.step(trans, tr, res && !e.inhibited(ru, d, now), !res, now, obs{})
}

// step moves a track's lifecycle: raise once the raise-condition held for
// Hold, clear once the clear-condition held for ClearHold.
func (e *Engine) step(trans []transition, tr *track, raise, clear bool, now time.Time, o obs) []transition {
	cfg := tr.rule.cfg
	// What the track saw matters only to a raise or a clear to come: the
	// common reading that crosses nothing writes nothing.
	if o.has && (raise || tr.alarm != nil) && tr.obs != o {
		tr.obs = o
	}
	ns := now.UnixNano()
	if tr.alarm == nil {
		if !raise {
			tr.pendSince = 0
			return trans
		}
		if tr.pendSince == 0 {
			tr.pendSince = ns
		}
		if ns-tr.pendSince < int64(cfg.Hold) {
			return trans
		}
		return e.raise(trans, tr, now)
	}
	if !clear {
		tr.clearSince = 0
		return trans
	}
	if tr.clearSince == 0 {
		tr.clearSince = ns
	}
	if ns-tr.clearSince < int64(cfg.ClearHold) {
		return trans
	}
	return e.clear(trans, tr, now)
}
