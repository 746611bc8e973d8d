package config

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"

	"github.com/townlink/townlink/drivers/cjt188"
	"github.com/townlink/townlink/drivers/dlt645"
)

// RuleKind is what a rule watches.
type RuleKind string

// Rule kinds.
const (
	RuleThreshold RuleKind = "threshold" // a point above or below a limit
	RuleRate      RuleKind = "rate"      // a point's change per unit of time (or a counter's derivative)
	RuleWindow    RuleKind = "window"    // a threshold or rate within a daily time window
	RuleStale     RuleKind = "stale"     // no reading for N intervals
	RuleGroup     RuleKind = "group"     // every device of a scope dark or silent at once
	RuleExpr      RuleKind = "expr"      // a boolean expression over points, previous values and time
	RuleEvent     RuleKind = "event"     // a device's own report: an SOS, a door opened, a long wait
)

var ruleKinds = []string{"threshold", "rate", "window", "stale", "group", "expr", "event"}

// Defaults of the rules section.
const (
	DefaultStaleIntervals = 3
	DefaultRuleRaises     = 20 // raises per rule per DefaultRuleRaisesPer before suppression
	DefaultRuleRaisesPer  = time.Hour
	maxExprNodes          = 500
)

// Rule is one early-warning rule.
type Rule struct {
	ID       string
	Kind     RuleKind
	Severity int    // 1 (most severe) .. 4
	Message  string // template: {rule} {device} {scope} {point} {value} {limit}
	Scope    Scope

	// threshold, rate, window, group: the points watched. A device-level
	// condition holds when any of them crosses the limit; a group's when
	// all of them do on every device.
	Points     []string
	Above      *float64 // exactly one of Above and Below (group: Below)
	Below      *float64
	Hysteresis float64       // the clear-condition is the limit moved back by this much
	Hold       time.Duration // raise once the condition held this long (0: at once)
	ClearHold  time.Duration // clear once the clear-condition held this long (default Hold)

	// rate (and window on a rate): the change of the point per Per.
	Rate    bool
	Counter bool          // the point is a cumulative counter: resets and replacements re-baseline
	Per     time.Duration // default 1m (1h for a counter)
	Over    time.Duration // the span the rate is measured over; default Per
	MaxRate *float64      // counter: a larger rate is a meter replacement, not consumption

	// window: the daily window [From, To) in gateway.timezone, as minutes
	// after midnight; To < From spans midnight.
	From, To int

	// stale and group: silence. Intervals counts the device's interval;
	// After (set for devices without an interval) is an absolute time.
	Intervals int
	After     time.Duration

	// group: rules whose device-level alarms this group's condition
	// inhibits inside its scope (an outage is one alarm, not one per meter).
	Inhibits []string

	// expr
	Expr    string
	Program *vm.Program

	// event: readings whose "event" point is one of On (any reading when
	// On is empty) raise the alarm, or clear it when their State point
	// (a bool, e.g. active) is false; a reading without the State point
	// raises when On names its event. ClearAfter clears an alarm no
	// raising reading has renewed for that long (0: only the device
	// clears it).
	On         []string
	Where      map[string]string // and whose text points have these values (e.g. code: tamper)
	State      string
	ClearAfter time.Duration

	// Disabled: written with enabled: false (kept so that YAML() writes it
	// back, e.g. to switch a default rule off); never evaluated.
	Disabled bool
	// Default: one of DefaultRules, not written in the file.
	Default bool

	// Rate limit: at most Raises raises per RaisesPer; beyond, raises are
	// suppressed and the suppression is reported.
	Raises    int
	RaisesPer time.Duration

	node *yaml.Node // as written, for YAML()
}

// Scope selects devices: every key given must match (an empty scope is
// refused). Devices lists device ids.
type Scope struct {
	Devices []string
	Kind    Kind
	Grid    string
	Line    string
}

// String names the scope as alarms carry it: "device:w1", "line:RS485-A",
// "grid:G1", "kind:water", joined by "," when several keys are set.
func (s Scope) String() string {
	var parts []string
	if len(s.Devices) > 0 {
		parts = append(parts, "device:"+strings.Join(s.Devices, "+"))
	}
	if s.Kind != "" {
		parts = append(parts, "kind:"+string(s.Kind))
	}
	if s.Grid != "" {
		parts = append(parts, "grid:"+s.Grid)
	}
	if s.Line != "" {
		parts = append(parts, "line:"+s.Line)
	}
	return strings.Join(parts, ",")
}

// Match reports whether d is in the scope.
func (s Scope) Match(d *Device) bool {
	if len(s.Devices) > 0 && !slices.Contains(s.Devices, d.ID) {
		return false
	}
	if s.Kind != "" && d.Kind != s.Kind {
		return false
	}
	if s.Grid != "" && d.Grid != s.Grid {
		return false
	}
	if s.Line != "" && d.Line != s.Line {
		return false
	}
	return true
}

// ruleFields is what the cross-section checks need of a decoded rule.
type ruleFields struct {
	f     fields
	scope fields
}

var ruleKeys = []string{"id", "kind", "severity", "message", "scope", "point", "points", "above", "below",
	"hysteresis", "hold", "clear_hold", "counter", "per", "over", "max_rate", "from", "to", "intervals", "after",
	"inhibits", "expr", "rate_limit", "on", "where", "state", "clear_after", "enabled"}

// keysOf lists the keys each kind takes besides the common ones.
var keysOf = map[RuleKind][]string{
	RuleThreshold: {"point", "points", "above", "below", "hysteresis", "hold", "clear_hold"},
	RuleRate:      {"point", "points", "above", "below", "hysteresis", "hold", "clear_hold", "counter", "per", "over", "max_rate"},
	RuleWindow:    {"point", "points", "above", "below", "hysteresis", "hold", "clear_hold", "counter", "per", "over", "max_rate", "from", "to"},
	RuleStale:     {"point", "intervals", "after"},
	RuleGroup:     {"points", "below", "hold", "clear_hold", "intervals", "after", "inhibits"},
	RuleExpr:      {"expr", "hold", "clear_hold"},
	RuleEvent:     {"on", "where", "state", "clear_after"},
}

var commonRuleKeys = []string{"id", "kind", "severity", "message", "scope", "rate_limit", "enabled"}

func (d *decoder) decodeRules(fl field) ([]Rule, []ruleFields) {
	items, _ := d.list(fl, "a list of \"- id: night-leak\" entries")
	var out []Rule
	var rfs []ruleFields
	for _, it := range items {
		var r Rule
		rf, ok := d.decodeRule(it, &r)
		if ok {
			out = append(out, r)
			rfs = append(rfs, rf)
		}
	}
	return out, rfs
}

func (d *decoder) decodeRule(it field, r *Rule) (ruleFields, bool) {
	var rf ruleFields
	f, ok := d.mapping(it.val, it.path, ruleKeys, nil)
	if !ok {
		return rf, false
	}
	rf.f = f
	r.node = deref(it.val)
	if isNull(f.node) {
		d.errAt(f.node, f.path, "empty rule entry; write at least id:, kind:, severity:, message: and scope:")
		return rf, false
	}
	if x, ok := f.get("id"); ok {
		if s, ok := d.str(x); ok {
			if validDeviceID(s) {
				r.ID = s
			} else {
				d.errAt(deref(x.val), x.path, "%q is not a valid rule id (letters, digits, '.', '_' and '-', e.g. night-leak)", clip(s))
			}
		}
	} else {
		d.missing(&f, "id", "a name for the rule, e.g. night-leak")
	}
	if x, ok := f.get("enabled"); ok {
		if s, ok := d.enum(x, "true or false", "true", "false"); ok && s == "false" {
			// Switched off: only its id matters (a default rule's, or one
			// kept for later); the rest is not checked.
			r.Disabled = true
			return rf, true
		}
	}
	if x, ok := f.get("kind"); ok {
		if s, ok := d.enum(x, "a rule kind", ruleKinds...); ok {
			r.Kind = RuleKind(s)
		}
	} else {
		d.missing(&f, "kind", "one of "+orList(ruleKinds))
	}
	if x, ok := f.get("severity"); ok {
		r.Severity, _ = d.integer(x, 1, 4, "1 (most severe) to 4")
	} else {
		d.missing(&f, "severity", "1 (most severe) to 4")
	}
	if x, ok := f.get("message"); ok {
		if s, ok := d.nonEmpty(x, "a message, e.g. \"{device}: night flow {value} m³/h above {limit}\""); ok {
			if bad := badPlaceholder(s); bad != "" {
				d.errAt(deref(x.val), x.path, "unknown placeholder %s in the message (use {rule}, {device}, {scope}, {point}, {value} or {limit})", bad)
			} else {
				r.Message = s
			}
		}
	} else {
		d.missing(&f, "message", "the alarm's text, e.g. \"{device}: {point} {value} above {limit}\"")
	}
	if x, ok := f.get("scope"); ok {
		rf.scope = d.decodeScope(x, &r.Scope)
	} else {
		d.missing(&f, "scope", "the devices it watches, e.g. scope: {device: w1}, {kind: water}, {grid: G1} or {line: RS485-A}")
	}
	if r.Kind != "" {
		for k, x := range f.m {
			if !slices.Contains(commonRuleKeys, k) && !slices.Contains(keysOf[r.Kind], k) {
				article := "a"
				if strings.ContainsRune("aeiou", rune(r.Kind[0])) {
					article = "an"
				}
				d.errAt(x.key, x.path, "%s %s rule has no key %q (it takes %s)", article, r.Kind, k, strings.Join(keysOf[r.Kind], ", "))
			}
		}
	}
	d.decodeCondition(&f, r)
	d.decodeRateLimit(&f, r)
	return rf, true
}

var placeholderRE = regexp.MustCompile(`\{[^{}]*\}`)

// Placeholders a message template may hold.
var Placeholders = []string{"{rule}", "{device}", "{scope}", "{point}", "{value}", "{limit}"}

func badPlaceholder(s string) string {
	for _, m := range placeholderRE.FindAllString(s, -1) {
		if !slices.Contains(Placeholders, m) {
			return m
		}
	}
	return ""
}

func (d *decoder) decodeScope(x field, s *Scope) fields {
	f, ok := d.mapping(x.val, x.path, []string{"device", "devices", "kind", "grid", "line"}, nil)
	if !ok {
		return f
	}
	if y, ok := f.get("device"); ok {
		if v, ok := d.nonEmpty(y, "a device id"); ok {
			s.Devices = []string{v}
		}
	}
	if y, ok := f.get("devices"); ok {
		if f.has("device") {
			d.errAt(y.key, y.path, "write either device: or devices:, not both")
		}
		s.Devices, _, _ = d.strList(y, "devices: [m1, m2]")
	}
	if y, ok := f.get("kind"); ok {
		if v, ok := d.enum(y, "a device kind", "power", "water", "enterprise", "gpio", "traffic", "recorder", "kiosk"); ok {
			s.Kind = Kind(v)
		}
	}
	if y, ok := f.get("grid"); ok {
		s.Grid, _ = d.nonEmpty(y, "a grid-cell code")
	}
	if y, ok := f.get("line"); ok {
		s.Line, _ = d.nonEmpty(y, "a line name from lines:")
	}
	if s.String() == "" {
		d.errAt(f.node, x.path, "is empty; name the devices with device:, devices:, kind:, grid: or line:")
	}
	return f
}

func (d *decoder) float(x field) (float64, bool) {
	v, ok := d.decimal(x)
	if !ok {
		return 0, false
	}
	fv, _ := v.Rat().Float64()
	return fv, true
}

func (d *decoder) decodeCondition(f *fields, r *Rule) {
	if x, ok := f.get("point"); ok {
		if s, ok := d.nonEmpty(x, "a point name, e.g. flow_m3"); ok {
			r.Points = []string{s}
		}
	}
	if x, ok := f.get("points"); ok {
		if f.has("point") {
			d.errAt(x.key, x.path, "write either point: or points:, not both")
		}
		r.Points, _, _ = d.strList(x, "points: [voltage_a_v, voltage_b_v, voltage_c_v]")
	}
	for _, k := range []struct {
		key string
		dst **float64
	}{{"above", &r.Above}, {"below", &r.Below}, {"max_rate", &r.MaxRate}} {
		if x, ok := f.get(k.key); ok {
			if v, ok := d.float(x); ok {
				*k.dst = &v
			}
		}
	}
	if x, ok := f.get("hysteresis"); ok {
		if v, ok := d.float(x); ok {
			if v < 0 {
				d.errAt(deref(x.val), x.path, "%v is negative; hysteresis is how far back past the limit a value must come to clear", v)
			}
			r.Hysteresis = v
		}
	}
	if x, ok := f.get("hold"); ok {
		r.Hold, _ = d.duration(x, 0, 7*24*time.Hour)
	}
	r.ClearHold = r.Hold
	if x, ok := f.get("clear_hold"); ok {
		r.ClearHold, _ = d.duration(x, 0, 7*24*time.Hour)
	}
	if x, ok := f.get("counter"); ok {
		if s, ok := d.enum(x, "true or false", "true", "false"); ok {
			r.Counter = s == "true"
		}
	}
	r.Rate = r.Kind == RuleRate || (r.Kind == RuleWindow && (r.Counter || f.has("per") || f.has("over")))
	if x, ok := f.get("per"); ok {
		r.Per, _ = d.duration(x, time.Second, 24*time.Hour)
	}
	if r.Per == 0 {
		r.Per = time.Minute
		if r.Counter {
			r.Per = time.Hour
		}
	}
	if x, ok := f.get("over"); ok {
		r.Over, _ = d.duration(x, time.Second, 24*time.Hour)
	}
	if r.Over == 0 {
		r.Over = r.Per
	}
	fromOK, toOK := false, false
	if x, ok := f.get("from"); ok {
		r.From, fromOK = d.clockTime(x)
	}
	if x, ok := f.get("to"); ok {
		r.To, toOK = d.clockTime(x)
	}
	if fromOK && toOK && r.From == r.To {
		x, _ := f.get("to")
		d.errAt(deref(x.val), x.path, "the window from %s to %s is empty; make to: differ from from:", hhmm(r.From), hhmm(r.To))
	}
	if x, ok := f.get("intervals"); ok {
		r.Intervals, _ = d.integer(x, 1, 10000, "1..10000 of the device's intervals")
	}
	if x, ok := f.get("after"); ok {
		r.After, _ = d.duration(x, time.Second, 7*24*time.Hour)
	}
	if x, ok := f.get("inhibits"); ok {
		r.Inhibits, _, _ = d.strList(x, "inhibits: [phase-loss, meter-silent]")
	}
	if x, ok := f.get("expr"); ok {
		r.Expr, _ = d.nonEmpty(x, "a boolean expression, e.g. flow_m3 - prev.flow_m3 > 0.5")
	}
	if x, ok := f.get("on"); ok {
		r.On, _, _ = d.strList(x, "on: [sos]")
	}
	if x, ok := f.get("where"); ok {
		r.Where = d.decodeWhere(x)
	}
	if x, ok := f.get("state"); ok {
		r.State, _ = d.nonEmpty(x, "a bool point, e.g. active")
	}
	if x, ok := f.get("clear_after"); ok {
		r.ClearAfter, _ = d.duration(x, time.Second, 30*24*time.Hour)
	}
	d.checkCondition(f, r)
}

// decodeWhere decodes an event rule's where: a mapping of text points to
// the values a report must carry, e.g. {code: tamper}.
func (d *decoder) decodeWhere(x field) map[string]string {
	n := deref(x.val)
	if n == nil || n.Kind != yaml.MappingNode {
		d.errAt(n, x.path, "expected a mapping of points to values, e.g. where: {code: tamper}; found %s", describe(n))
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k == nil || k.Kind != yaml.ScalarNode || !validPointName(k.Value) {
			d.errAt(n.Content[i], x.path, "%s is not a point name (lower-case letters, digits and '_', e.g. code)", describe(k))
			continue
		}
		if v == nil || v.Kind != yaml.ScalarNode || v.Value == "" {
			d.errAt(n.Content[i+1], join(x.path, k.Value), "expected the text the point must equal, e.g. tamper; found %s", describe(v))
			continue
		}
		out[k.Value] = v.Value
	}
	return out
}

// checkCondition checks what each kind requires.
func (d *decoder) checkCondition(f *fields, r *Rule) {
	has := func(key string) bool { _, ok := f.get(key); return ok }
	need := func(key, what string) {
		if !has(key) {
			d.missing(f, key, what)
		}
	}
	switch r.Kind {
	case RuleThreshold, RuleRate, RuleWindow:
		switch {
		case !has("point") && !has("points"):
			d.missing(f, "point", "the point it watches, e.g. point: flow_m3")
		case len(r.Points) == 0 && has("points"):
			x, _ := f.get("points")
			d.errAt(deref(x.val), x.path, "lists no point; write at least one, e.g. points: [voltage_a_v]")
		}
		switch {
		case has("above") && has("below"):
			x, _ := f.get("below")
			d.errAt(x.key, x.path, "write either above: or below:, not both (make two rules for a band)")
		case !has("above") && !has("below"):
			d.missing(f, "above", "the limit, e.g. above: 0.05 (or below: 200)")
		}
		if r.Kind == RuleWindow {
			need("from", "the window's start, e.g. from: \"02:00\"")
			need("to", "the window's end, e.g. to: \"04:00\"")
		}
		if r.MaxRate != nil && !r.Counter {
			x, _ := f.get("max_rate")
			d.errAt(x.key, x.path, "max_rate applies to counters only; add counter: true or remove it")
		}
	case RuleStale:
		if has("intervals") && has("after") {
			x, _ := f.get("after")
			d.errAt(x.key, x.path, "write either intervals: or after:, not both")
		}
		if r.Intervals == 0 && r.After == 0 {
			r.Intervals = DefaultStaleIntervals
		}
	case RuleGroup:
		if !has("points") && !has("intervals") && !has("after") {
			d.missing(f, "points", "what makes a device dark, e.g. points: [voltage_a_v, voltage_b_v, voltage_c_v] with below: 50, and/or intervals: 3 of silence")
		}
		if has("points") && !has("below") {
			d.missing(f, "below", "the level under which a point counts as dark, e.g. below: 50")
		}
		if has("intervals") && has("after") {
			x, _ := f.get("after")
			d.errAt(x.key, x.path, "write either intervals: or after:, not both")
		}
	case RuleExpr:
		need("expr", "a boolean expression, e.g. expr: \"flow_m3 - prev.flow_m3 > 0.5\"")
	case RuleEvent:
		if !has("on") && !has("state") {
			d.missing(f, "on", "the events that raise it, e.g. on: [sos] (and state: active to clear on active: false), or state: <a bool point>")
		}
		if x, ok := f.get("state"); ok && r.State != "" && !validPointName(r.State) {
			d.errAt(deref(x.val), x.path, "%q is not a point name (lower-case letters, digits and '_', e.g. active)", clip(r.State))
		}
	}
}

// clockTime decodes "HH:MM" (00:00..23:59, or 24:00 as a window's end)
// into minutes after midnight.
func (d *decoder) clockTime(x field) (int, bool) {
	n, ok := d.scalar(x)
	if !ok {
		return 0, false
	}
	s := strings.TrimSpace(n.Value)
	bad := func() (int, bool) {
		d.errAt(n, x.path, "%q is not a time of day (write it as \"HH:MM\" in quotes, 24-hour, e.g. \"02:00\" or \"23:30\")", clip(n.Value))
		return 0, false
	}
	hh, mm, ok := strings.Cut(s, ":")
	if !ok || len(hh) != 2 || len(mm) != 2 {
		return bad()
	}
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if err1 != nil || err2 != nil || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return bad()
	}
	return h*60 + m, true
}

func hhmm(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }

func (d *decoder) decodeRateLimit(f *fields, r *Rule) {
	r.Raises, r.RaisesPer = DefaultRuleRaises, DefaultRuleRaisesPer
	x, ok := f.get("rate_limit")
	if !ok {
		return
	}
	lf, ok := d.mapping(x.val, x.path, []string{"raises", "per"}, nil)
	if !ok {
		return
	}
	if y, ok := lf.get("raises"); ok {
		r.Raises, _ = d.integer(y, 1, 100000, "1..100000 raises")
	}
	if y, ok := lf.get("per"); ok {
		r.RaisesPer, _ = d.duration(y, time.Second, 7*24*time.Hour)
	}
}

// PointsOf returns the point names a device reports, and false when its
// driver's points are not known in advance (recorders, kiosks).
func PointsOf(dv *Device) ([]string, bool) {
	switch dv.Driver {
	case DriverDLT645, DriverDLT645v97:
		return dv.Read, true
	case DriverCJT188:
		return []string{cjt188.PointFlow, cjt188.PointSettleFlow, cjt188.PointValve, cjt188.PointBatteryLow,
			cjt188.PointStatusRaw, cjt188.PointMeterTime, cjt188.PointClockOffset}, true
	case DriverModbus, DriverModbusTCP:
		return pointNames(dv.Points), true
	case DriverPulse:
		switch dv.Input {
		case InputCounter:
			ps := []string{"count"}
			if dv.Quantity != "" {
				ps = append(ps, dv.Quantity)
			}
			return ps, true
		case InputTraffic:
			return []string{"vehicles", "interval_s"}, true
		}
		return []string{"state"}, true
	}
	return nil, false
}

// checkRules runs the rules' checks that need devices and lines with
// defaults applied: scopes name existing things, points exist on every
// device in scope, expressions compile.
func (d *decoder) checkRules(c *Config, p *parsed) {
	ids := map[string]int{}
	for i := range c.Rules {
		r, rf := &c.Rules[i], &p.rules[i]
		if r.ID != "" {
			if j, dup := ids[r.ID]; dup {
				d.errAt(valNode(&rf.f, "id"), join(rf.f.path, "id"), "rule %q is defined twice (also at line %d); rule ids must be unique", r.ID, valNode(&p.rules[j].f, "id").Line)
			} else {
				ids[r.ID] = i
			}
		}
		if r.Disabled {
			continue
		}
		devs := d.checkScope(c, r, rf)
		if devs == nil {
			continue
		}
		if r.Kind == RuleEvent {
			d.checkState(r, rf, devs)
			continue
		}
		d.checkPoints(r, rf, devs)
		if r.Kind == RuleExpr && r.Expr != "" {
			d.compileExpr(r, rf, devs)
		}
		if r.Kind == RuleStale || r.Kind == RuleGroup {
			d.checkSilence(r, rf, devs)
		}
	}
	for _, r := range DefaultRules(c) {
		if _, ok := ids[r.ID]; !ok {
			ids[r.ID] = -1
			c.Rules = append(c.Rules, r)
		}
	}
	for i := range p.rules {
		r, rf := &c.Rules[i], &p.rules[i]
		for _, in := range r.Inhibits {
			if _, ok := ids[in]; !ok || in == r.ID {
				d.errAt(valNode(&rf.f, "inhibits"), join(rf.f.path, "inhibits"), "%q is not another rule's id%s", clip(in), didYouMean(in, keysOfMap(ids)))
			}
		}
	}
}

func keysOfMap(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkScope returns the devices in the rule's scope (nil after an error).
func (d *decoder) checkScope(c *Config, r *Rule, rf *ruleFields) []*Device {
	sf := &rf.scope
	if sf.node == nil {
		return nil
	}
	var ids, lines, grids []string
	for i := range c.Devices {
		ids = append(ids, c.Devices[i].ID)
		if c.Devices[i].Grid != "" && !slices.Contains(grids, c.Devices[i].Grid) {
			grids = append(grids, c.Devices[i].Grid)
		}
	}
	for _, l := range c.Lines {
		lines = append(lines, l.Name)
	}
	for j, id := range r.Scope.Devices {
		if !slices.Contains(ids, id) {
			at := valNode(sf, "device")
			if sf.has("devices") {
				at = deref(valNode(sf, "devices"))
				if at.Kind == yaml.SequenceNode && j < len(at.Content) {
					at = at.Content[j]
				}
			}
			d.errAt(at, join(sf.path, "device"), "%q is not a configured device%s", clip(id), didYouMean(id, ids))
			return nil
		}
	}
	if r.Scope.Line != "" && !slices.Contains(lines, r.Scope.Line) {
		d.errAt(valNode(sf, "line"), join(sf.path, "line"), "%q is not a line in lines:%s", clip(r.Scope.Line), didYouMean(r.Scope.Line, lines))
		return nil
	}
	if r.Scope.Grid != "" && !slices.Contains(grids, r.Scope.Grid) {
		d.errAt(valNode(sf, "grid"), join(sf.path, "grid"), "no device has grid %q%s", clip(r.Scope.Grid), didYouMean(r.Scope.Grid, grids))
		return nil
	}
	var devs []*Device
	for i := range c.Devices {
		if r.Scope.Match(&c.Devices[i]) {
			devs = append(devs, &c.Devices[i])
		}
	}
	if len(devs) == 0 {
		d.errAt(sf.node, sf.path, "no configured device matches this scope (%s); check the keys", r.Scope)
		return nil
	}
	if r.Kind == RuleGroup && len(devs) < 2 && len(r.Points) < 2 {
		d.errAt(sf.node, sf.path, "a group rule needs at least two devices (or two points) in scope; this one matches only %s (use a threshold or stale rule for one device)", devs[0].ID)
		return nil
	}
	return devs
}

// checkPoints: every point watched exists on every device in scope.
func (d *decoder) checkPoints(r *Rule, rf *ruleFields, devs []*Device) {
	key := "point"
	if rf.f.has("points") {
		key = "points"
	}
	for j, pt := range r.Points {
		if !validPointName(pt) {
			d.errAt(d.listItem(&rf.f, key, j), join(rf.f.path, key), "%q is not a point name (lower-case letters, digits and '_', e.g. flow_m3)", clip(pt))
			return
		}
		for _, dv := range devs {
			known, ok := PointsOf(dv)
			if !ok || slices.Contains(known, pt) {
				continue
			}
			hint := didYouMean(pt, known)
			if hint == "" {
				hint = " (it reports " + strings.Join(known, ", ") + ")"
			}
			if dv.Driver == DriverDLT645 || dv.Driver == DriverDLT645v97 {
				if slices.Contains(dlt645.Points(dlt645.V2007), pt) {
					hint = fmt.Sprintf(" (add %s to the device's read: list)", pt)
				}
			}
			d.errAt(d.listItem(&rf.f, key, j), join(rf.f.path, key), "unknown point %q: device %s does not report it%s", clip(pt), dv.ID, hint)
			return
		}
	}
}

// checkState: an event rule's state point exists on every device in
// scope whose points are known (recorders and kiosks report what their
// messages carry).
func (d *decoder) checkState(r *Rule, rf *ruleFields, devs []*Device) {
	if r.State == "" {
		return
	}
	for _, dv := range devs {
		known, ok := PointsOf(dv)
		if ok && !slices.Contains(known, r.State) {
			d.errAt(valNode(&rf.f, "state"), join(rf.f.path, "state"), "unknown point %q: device %s does not report it (it reports %s)", clip(r.State), dv.ID, strings.Join(known, ", "))
			return
		}
	}
}

// listItem is the node of item j of a list key (or the key's value).
func (d *decoder) listItem(f *fields, key string, j int) *yaml.Node {
	n := valNode(f, key)
	if n != nil && n.Kind == yaml.SequenceNode && j < len(n.Content) {
		return n.Content[j]
	}
	return n
}

// checkSilence: a silence measured in intervals needs devices that have one.
func (d *decoder) checkSilence(r *Rule, rf *ruleFields, devs []*Device) {
	if r.After > 0 || (r.Kind == RuleGroup && r.Intervals == 0) {
		return
	}
	for _, dv := range devs {
		if dv.Interval == 0 {
			d.errAt(rf.f.node, rf.f.path, "device %s has no interval, so silence cannot be counted in intervals; write after: 5m instead", dv.ID)
			return
		}
	}
}

// ExprEnv is the environment an expression rule is compiled and run in:
// the device's points by name (numbers as float64, text as string), prev
// (the previous reading's points), dt (seconds since it), hour, minute
// and weekday (0 = Sunday) in gateway.timezone, and device.
// A point's type is its zero value in the environment: float64, string
// (TextPoints) or bool (BoolPoints); prev holds the points that are not
// text, as numbers (a bool as 0 or 1), 0 when not known. prev.<point> is
// compiled as the name "prev.<point>" (PrevPatch), so an unknown point
// there is refused like any other.
func ExprEnv(points, textPoints, boolPoints []string) map[string]any {
	env := map[string]any{"dt": 0.0, "hour": 0, "minute": 0, "weekday": 0, "device": ""}
	prev := map[string]float64{}
	for _, p := range points {
		switch {
		case slices.Contains(textPoints, p):
			env[p] = ""
			continue
		case slices.Contains(boolPoints, p):
			env[p] = false
		default:
			env[p] = 0.0
		}
		env[PrevPrefix+p], prev[p] = 0.0, 0
	}
	env["prev"] = prev
	return env
}

// PrevPrefix is how prev.<point> is named once compiled.
const PrevPrefix = "prev."

// prevPatch compiles prev.<point> (and prev["<point>"]) as the name
// "prev.<point>": a number read from the environment directly, not a
// map looked up by reflection on every run.
type prevPatch struct{}

func (prevPatch) Visit(n *ast.Node) {
	m, ok := (*n).(*ast.MemberNode)
	if !ok || m.Optional {
		return
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok || id.Value != "prev" {
		return
	}
	if p, ok := m.Property.(*ast.StringNode); ok {
		ast.Patch(n, &ast.IdentifierNode{Value: PrevPrefix + p.Value})
	}
}

// typedPoints splits a device's points into text and bool ones (the rest
// are numbers).
func typedPoints(dv *Device) (text, bools []string) {
	switch dv.Driver {
	case DriverCJT188:
		return []string{cjt188.PointValve, cjt188.PointMeterTime}, []string{cjt188.PointBatteryLow}
	case DriverDLT645, DriverDLT645v97:
		return []string{"meter_time"}, nil
	case DriverModbus, DriverModbusTCP:
		for _, p := range dv.Points {
			if p.Table.Bits() {
				bools = append(bools, p.Name)
			}
		}
	case DriverPulse:
		if dv.Input != InputCounter && dv.Input != InputTraffic {
			bools = []string{"state"}
		}
	}
	return text, bools
}

// ExprPoints returns the points, text points and bool points of the
// devices, for ExprEnv.
func ExprPoints(devs []*Device) (points, text, bools []string) {
	for _, dv := range devs {
		ps, _ := PointsOf(dv)
		t, b := typedPoints(dv)
		for _, p := range ps {
			if slices.Contains(points, p) {
				continue
			}
			points = append(points, p)
			if slices.Contains(t, p) {
				text = append(text, p)
			}
			if slices.Contains(b, p) {
				bools = append(bools, p)
			}
		}
	}
	return points, text, bools
}

// ExprOptions are the compile options of every rule expression: a
// boolean result, a bounded size, only pure built-ins (no I/O exists in
// expr; these keep memory bounded too).
func ExprOptions(env map[string]any) []expr.Option {
	opts := []expr.Option{expr.Env(env), expr.AsBool(), expr.MaxNodes(maxExprNodes), expr.DisableAllBuiltins(), expr.Patch(prevPatch{})}
	for _, b := range []string{"abs", "min", "max", "ceil", "floor", "round", "len", "contains", "startsWith", "endsWith"} {
		opts = append(opts, expr.EnableBuiltin(b))
	}
	return opts
}

func (d *decoder) compileExpr(r *Rule, rf *ruleFields, devs []*Device) {
	for _, dv := range devs {
		if _, ok := PointsOf(dv); !ok {
			d.errAt(valNode(&rf.f, "scope"), join(rf.f.path, "scope"), "device %s (%s) has no fixed points, so an expression cannot be checked against them; narrow the scope", dv.ID, dv.Driver)
			return
		}
	}
	points, text, bools := ExprPoints(devs)
	prog, err := expr.Compile(r.Expr, ExprOptions(ExprEnv(points, text, bools))...)
	if err != nil {
		msg := err.Error()
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		msg = clip(msg)
		if name, ok := strings.CutPrefix(msg, "unknown name "); ok {
			name, _, _ = strings.Cut(name, " ")
			if m := suggest(name, slices.Sorted(maps.Keys(ExprEnv(points, text, bools)))); m != "" && m != name {
				msg += fmt.Sprintf("; did you mean %s?", m)
			}
		}
		d.errAt(valNode(&rf.f, "expr"), join(rf.f.path, "expr"), "expression does not compile: %s (write a boolean over the points %s, prev.<point>, dt, hour, minute, weekday)", msg, strings.Join(points, ", "))
		return
	}
	r.Program = prog
}

// rulesNode formats the rules as written, for YAML().
func rulesNode(rs []Rule) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode}
	for i := range rs {
		if rs[i].node != nil {
			n.Content = append(n.Content, rs[i].node)
		}
	}
	return n
}
