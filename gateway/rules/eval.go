package rules

import (
	"math"
	"strings"
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
// A reading touches a device's track only when the rule's condition holds
// or the track is busy (device.busy); the rest, used when an alarm is
// pending, raised or cleared, is apart. Times are Unix nanoseconds, 0 for
// none.
type track struct {
	rule                 *rule
	dev                  *device    // nil for a group
	alarm                *Alarm     // active (or suppressed) alarm
	cold                 *trackCold // nil until needed: most tracks never are
	pendSince            int64      // raise-condition holding since
	k                    int32      // the track's index in dev.tracks
	raiseCond, clearCond bool
}

// busy reports whether the track is other than idle (no alarm, nothing
// pending, the raise-condition not holding): an idle track stays idle on
// a reading whose raise-condition does not hold.
func (tr *track) busy() bool { return tr.alarm != nil || tr.pendSince != 0 || tr.raiseCond }

// settle records in its device whether the track is busy (after any
// change of its state).
func (tr *track) settle() {
	if d := tr.dev; d != nil {
		d.busy.set(int(tr.k), tr.busy())
	}
}

// c is the track's cold part, made on first use.
func (tr *track) c() *trackCold {
	if tr.cold == nil {
		tr.cold = &trackCold{}
	}
	return tr.cold
}

// target is the device's id, or the group rule's scope.
func (tr *track) target() string {
	if tr.dev != nil {
		return tr.dev.cfg.ID
	}
	return tr.rule.scope
}

// seen is what the track saw last (nothing if it never held).
func (tr *track) seen() obs {
	if tr.cold == nil {
		return obs{}
	}
	return tr.cold.obs
}

// trackCold is the part of a track only an alarm pending, raised or
// cleared uses.
type trackCold struct {
	clearSince int64 // clear-condition holding since (while active)
	obs        obs
	ev         *eventState // event rules only
}

type sample struct {
	v float64
	t int64 // Unix ns
}

// maxSamples bounds a rate rule's history per point: the rate is taken
// over the last Over or the last maxSamples readings, whichever is shorter.
// Without Over it is taken over the last two.
const maxSamples = 32

// ringLen is how many samples a rule keeps per point (a power of two).
func ringLen(cfg *config.Rule) int {
	if cfg.Over <= 0 {
		return 2
	}
	return maxSamples
}

// ring holds a point's recent samples, oldest first, without moving them,
// in buf[off : off+mask+1] of its device's samples.
type ring struct {
	off, mask uint32
	head, n   uint32
}

func (r *ring) at(buf []sample, i uint32) sample { return buf[r.off+(r.head+i)&r.mask] }

func (r *ring) drop() { r.head = (r.head + 1) & r.mask; r.n-- }

func (r *ring) push(buf []sample, x sample) {
	if r.n == r.mask+1 {
		r.drop()
	}
	buf[r.off+(r.head+r.n)&r.mask] = x
	r.n++
}

func (r *ring) restart(buf []sample, x sample) { r.head, r.n = 0, 0; r.push(buf, x) }

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

// observe evaluates reading f of batch b.
func (e *Engine) observe(trans []transition, b *batch, f *fed, now time.Time) []transition {
	d, t := f.d, f.t
	if f.useNow {
		t = now.UnixNano()
	}
	d.seen = now
	e.cur++
	for _, v := range b.vals[f.off : f.off+f.n] {
		i := v.idx
		e.present[i] = e.cur
		switch {
		case v.text == fedNum:
			e.vals[i], e.gen[i] = v.f, e.cur
		case v.text >= 0:
			d.lastText[e.pname[i]] = b.texts[v.text]
		}
	}
	for k, ru := range d.set.rules {
		switch ru.cfg.Kind {
		case config.RuleStale:
			if len(ru.cfg.Points) > 0 {
				if pi := ru.pidx[0]; e.present[pi] == e.cur {
					d.seenPt[pi] = now.UnixNano()
				}
			}
			if d.busy.has(k) { // else Tick watches the silence
				trans = e.evalStale(trans, &d.tracks[k], d, now)
			}
		case config.RuleExpr:
			trans = e.evalExpr(trans, d, k, t, now)
		case config.RuleEvent:
			if f.r != nil { // always: devices with event rules are evaluated at once
				trans = e.evalEvent(trans, &d.tracks[k], d, f.r, now)
			}
		default:
			trans = e.evalCond(trans, d, k, t, now)
		}
	}
	if d.keep {
		for i, g := range e.gen {
			if g == e.cur {
				d.lastv[i], d.lastok[i] = e.vals[i], true
			}
		}
		d.lastT, d.known = t, true
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

// evalCond evaluates threshold, rate and window rules: rule k of d's set.
func (e *Engine) evalCond(trans []transition, d *device, k int, t int64, now time.Time) []transition {
	ru := d.set.rules[k]
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
			if x, ok = rate(&d.rings[d.set.ring[k]+i], d.samples, v, t, cfg); !ok {
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
	if !raise && !d.busy.has(k) {
		return trans // the common reading: nothing held, nothing to hold (checked here, without a call)
	}
	return e.verdict(trans, d, k, raise, clear, now, o)
}

// verdict applies a reading's raise- and clear-condition to rule k of d,
// whose track is busy or whose raise-condition holds.
func (e *Engine) verdict(trans []transition, d *device, k int, raise, clear bool, now time.Time, o obs) []transition {
	tr := &d.tracks[k]
	tr.raiseCond, tr.clearCond = raise, clear
	if !raise && tr.alarm == nil && tr.pendSince == 0 {
		tr.settle()
		return trans
	}
	return e.step(trans, tr, raise && !e.inhibited(tr.rule, d, now), clear, now, o)
}

// rate adds a sample to h and returns the change per Per, measured over
// the last Over (or maxSamples; without Over, since the last sample). A
// counter that goes down was reset or replaced, and one that jumps above
// MaxRate was replaced: both start a new baseline.
func rate(h *ring, buf []sample, v float64, tn int64, cfg *config.Rule) (float64, bool) {
	if h.n > 0 {
		last := h.at(buf, h.n-1)
		if tn <= last.t {
			return 0, false
		}
		if cfg.Counter && v < last.v {
			h.restart(buf, sample{v, tn})
			return 0, false
		}
	}
	h.push(buf, sample{v, tn})
	cut := tn - int64(cfg.Over)
	for h.n > 2 && h.at(buf, 1).t <= cut {
		h.drop()
	}
	if h.n < 2 {
		return 0, false
	}
	first := h.at(buf, 0)
	x := (v - first.v) / float64(tn-first.t) * float64(cfg.Per)
	if cfg.Counter && cfg.MaxRate != nil && x > *cfg.MaxRate {
		h.restart(buf, sample{v, tn})
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
		if !d.known {
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
func (e *Engine) evalExpr(trans []transition, d *device, k int, t int64, now time.Time) []transition {
	ru := d.set.rules[k]
	if !d.known {
		return trans
	}
	var res bool
	if ru.fast != nil {
		res = e.runFast(ru, d, t, now)
	} else {
		var ok bool
		if res, ok = e.runVM(ru, d, t, now); !ok {
			return trans
		}
	}
	if !res && !d.busy.has(k) {
		return trans
	}
	return e.verdict(trans, d, k, res, !res, now, obs{})
}

// value is point i's value for d's expressions: read now, or the latest
// (a bool as 0 or 1).
func (e *Engine) value(d *device, i int) float64 {
	if e.gen[i] == e.cur {
		return e.vals[i]
	}
	return d.lastv[i]
}

// prevValue is point i's value in d's previous reading (0 if none).
func (d *device) prevValue(i int) float64 {
	if d.lastok[i] {
		return d.lastv[i]
	}
	return 0
}

// runFast runs an expression compiled to closures on device d's reading at
// t: the slots get what runVM would put in the environment.
func (e *Engine) runFast(ru *rule, d *device, t int64, now time.Time) bool {
	s := ru.slots
	for j, f := range ru.fill {
		switch f.kind {
		case fillPoint:
			s[j] = e.value(d, f.idx)
		case fillPrev:
			s[j] = d.prevValue(f.idx)
		case fillDT:
			s[j] = time.Duration(t - d.lastT).Seconds()
		default:
			e.clockAt(now)
			switch f.kind {
			case fillHour:
				s[j] = float64(e.mod / 60)
			case fillMinute:
				s[j] = float64(e.mod % 60)
			default:
				s[j] = float64(e.wday)
			}
		}
	}
	return ru.fast.run(s)
}

// runVM runs an expression on expr's VM on device d's reading at t (false:
// it failed, which is logged).
func (e *Engine) runVM(ru *rule, d *device, t int64, now time.Time) (res, ok bool) {
	env, prev := ru.env, ru.prev
	for _, xv := range ru.xvars {
		i, p := xv.idx, xv.name
		switch {
		case !ru.usesPrev:
		case d.lastok[i]:
			prev[p] = d.lastv[i]
		default:
			delete(prev, p)
		}
		if xv.prev != "" {
			env[xv.prev] = d.prevValue(i)
		}
		if !xv.direct {
			continue
		}
		switch xv.kind {
		case varText: // kept by observe before the rules run
			env[p] = d.lastText[p]
		case varBool:
			env[p] = e.value(d, i) != 0
		default:
			env[p] = e.value(d, i)
		}
	}
	if ru.usesDT {
		env["dt"] = time.Duration(t - d.lastT).Seconds()
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
		e.exprFailed(ru, d, now, err)
		return false, false
	}
	res, _ = out.(bool)
	return res, true
}

// exprFailLogEvery is how often a rule whose expression keeps failing
// (e.g. an integer division by a point that is 0) is logged; each failure
// is counted (Stats.ExprErrors).
const exprFailLogEvery = time.Minute

// exprFailed counts a failed run of ru's expression on d, and logs it
// unless the rule's failures were logged within exprFailLogEvery.
func (e *Engine) exprFailed(ru *rule, d *device, now time.Time, err error) {
	e.exprErrors.Add(1)
	ru.failed++
	if !ru.failLogged.IsZero() && now.Sub(ru.failLogged) < exprFailLogEvery {
		return
	}
	msg, _, _ := strings.Cut(err.Error(), "\n") // the first line: what and where (line:col)
	e.log.Warn("rule expression failed on a reading, which this rule skips; guard the expression against it (e.g. minute != 0 && hour % minute == 0)",
		"rule", ru.cfg.ID, "device", d.cfg.ID, "err", msg, "failures", ru.failed, "logged_again_after", exprFailLogEvery)
	ru.failLogged, ru.failed = now, 0
}

// step moves a track's lifecycle: raise once the raise-condition held for
// Hold, clear once the clear-condition held for ClearHold.
func (e *Engine) step(trans []transition, tr *track, raise, clear bool, now time.Time, o obs) []transition {
	trans = e.stepOnce(trans, tr, raise, clear, now, o)
	tr.settle()
	return trans
}

func (e *Engine) stepOnce(trans []transition, tr *track, raise, clear bool, now time.Time, o obs) []transition {
	cfg := tr.rule.cfg
	// What the track saw matters only to a raise or a clear to come: the
	// common reading that crosses nothing writes nothing.
	if o.has && (raise || tr.alarm != nil) && tr.seen() != o {
		tr.c().obs = o
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
	c := tr.c()
	if !clear {
		c.clearSince = 0
		return trans
	}
	if c.clearSince == 0 {
		c.clearSince = ns
	}
	if ns-c.clearSince < int64(cfg.ClearHold) {
		return trans
	}
	return e.clear(trans, tr, now)
}
