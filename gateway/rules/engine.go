package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/config"
)

// Emitter queues readings durably (the pipeline's Emit): nil once queued.
type Emitter func(ctx context.Context, rs []drivers.Reading) error

// Store keeps the engine's state durably (a badgerq KV table): Put and
// Delete return once the change is on disk.
type Store interface {
	Put(key string, val []byte) error
	Delete(keys ...string) error
	Scan(fn func(key string, val []byte) error) error
}

// Options configure an Engine.
type Options struct {
	Gateway  string // the gateway id: the device of alarms on a whole scope
	Rules    []config.Rule
	Devices  []config.Device
	Location *time.Location   // gateway.timezone (nil: UTC)
	Now      func() time.Time // nil: time.Now
	Emit     Emitter
	Store    Store
	Logger   *slog.Logger
	// OnChange, when set, is called after alarms were raised or cleared
	// (the gateway republishes its status).
	OnChange func()
}

// Errors.
var (
	ErrOptions      = errors.New("rules: invalid options")
	ErrUnknownAlarm = errors.New("rules: no active alarm with this id")
	ErrStore        = errors.New("rules: state store")
)

// Engine evaluates rules on readings and keeps the alarms' lifecycle.
type Engine struct {
	o   Options
	log *slog.Logger
	loc *time.Location
	now func() time.Time

	devs   map[string]*device
	rules  []*rule
	groups []*rule

	mu     sync.Mutex // the state below
	tracks []*track   // every track, by key
	vm     vm.VM
	// The reading being evaluated: vals[i] is point i's number when
	// gen[i] == cur, and point i is in it (a number or not) when
	// present[i] == cur (points by pidx: those the rules name; pname[i] is
	// point i's name).
	pidx    map[string]int
	pname   []string
	vals    []float64
	gen     []uint64
	present []uint64
	cur     uint64
	modAt   time.Time // mod and wday are the minute of day and weekday in loc of [modAt, modTo)
	modTo   time.Time
	mod     int
	wday    int
	start   time.Time

	emitMu sync.Mutex   // taken before mu is released: transitions leave in order
	retry  []transition // not queued yet (emitMu)
	nretry atomic.Int32 // len(retry), readable without emitMu

	observed, raised, cleared, suppressed, exprErrors atomic.Uint64

	feedMu    sync.Mutex
	feedBuf   *batch        // Feed → Run
	feedSpace chan struct{} // closed when Run takes feedBuf
	feedWake  chan struct{} // capacity 1: feedBuf has readings
}

// feedLen is how many readings may wait for Run before Feed blocks; Run
// takes them every drainEvery (sooner when half of feedLen wait): one
// wake-up per batch, not per reading.
const (
	feedLen    = 8192
	drainEvery = 10 * time.Millisecond
)

// Stats are the engine's counters, for /metrics.
type Stats struct {
	Observed   uint64      // readings evaluated
	Raised     uint64      // raised records queued
	Cleared    uint64      // cleared records queued
	Suppressed uint64      // raises suppressed by rate limits
	ExprErrors uint64      // expression runs that failed (logged at most once a minute per rule)
	Active     map[int]int // active alarms by severity
}

// Stats returns the counters and the active alarms by severity.
func (e *Engine) Stats() Stats {
	s := Stats{Observed: e.observed.Load(), Raised: e.raised.Load(), Cleared: e.cleared.Load(), Suppressed: e.suppressed.Load(),
		ExprErrors: e.exprErrors.Load(), Active: map[int]int{}}
	for _, a := range e.Active() {
		s.Active[a.Severity]++
	}
	return s
}

// device is what the engine keeps of one configured device. A reading
// touches its first fields, the busy bits and its samples; a track only
// when its rule's condition holds or the track is busy, so a reading that
// crosses nothing reads the rules (shared by every device) and writes
// next to nothing.
type device struct {
	// What Feed reads, first.
	named []namedPoint // the points the rules in whose scope it is name
	route uint8        // where Feed sends its readings (routeNone, ...)
	keep  bool         // keep the latest values (groups, expressions)

	set      *ruleSet // device-level rules in whose scope it is
	tracks   []track  // tracks[k]: set.rules[k] on this device
	busy     bitset   // k set: tracks[k] may be pending, raised or holding its raise-condition
	rings    []ring   // rate rules' histories (set.ring)
	samples  []sample // the rings' samples
	seen     time.Time
	sync     bool      // evaluated by Feed's caller (event rules; see syncRule)
	seenPt   []int64   // by Engine.pidx: when a stale rule's point was last read (Unix ns; 0: not since the start)
	lastv    []float64 // latest numeric values by Engine.pidx (keep only)
	lastok   []bool
	lastT    int64 // when the latest values were read (Unix ns; keep only, valid once known)
	known    bool  // the latest values are known
	lastText map[string]string
	groups   []*rule // group rules in whose scope it is
	cfg      *config.Device
	rules    []*rule // set.rules while New builds it
}

// ruleSet is a list of device-level rules, shared by the devices that
// have the same ones in scope.
type ruleSet struct {
	rules []*rule
	ring  []int // ring[k]: rules[k]'s first ring in device.rings (rate rules; -1 else)
	nring int   // rings per device
	nsamp int   // samples per device
}

// bitset is a set of small ints; the first 64 need no other memory.
type bitset struct {
	w    uint64
	more []uint64
}

func (b *bitset) has(i int) bool {
	if i < 64 {
		return b.w&(1<<i) != 0
	}
	i -= 64
	return i/64 < len(b.more) && b.more[i/64]&(1<<(i%64)) != 0
}

func (b *bitset) set(i int, on bool) {
	w := &b.w
	if i >= 64 {
		i -= 64
		for i/64 >= len(b.more) {
			b.more = append(b.more, 0)
		}
		w, i = &b.more[i/64], i%64
	}
	if on {
		*w |= 1 << i
	} else {
		*w &^= 1 << i
	}
}

// rule is a compiled config rule.
type rule struct {
	cfg         *config.Rule
	scope       string
	devs        []*device
	tracks      []*track // per device in devs (device-level rules)
	group       *track   // group rules
	pidx        []int    // cfg.Points by Engine.pidx
	inhibitedBy []*rule

	// Expression rules: the program, its reused environment and prev,
	// the points it names (and each with its index in Engine.pidx and
	// type), and what else of the environment it uses (only that is
	// written into env).
	prog       *vm.Program
	env        map[string]any
	prev       map[string]float64
	envMin     int     // env's hour, minute and weekday: weekday×1440 + minute of day, +1 (0: unset)
	envDev     *device // whose id env's device is
	vars       []string
	xvars      []exprVar
	textPts    []string
	boolPts    []string
	usesPrev   bool
	usesDT     bool
	usesClock  bool // hour, minute or weekday
	usesDevice bool
	fast       *fastExpr  // the program as closures over slots (nil: on the VM)
	fill       []fastFill // what evalExpr puts in each slot
	slots      []float64

	failLogged time.Time   // when a failed run of the expression was last logged
	failed     int         // failed runs since
	raises     []time.Time // raise times within RaisesPer
	suppressed int         // suppressed since the last report
	reported   bool        // the current suppression was reported
}

// New builds an engine and loads its state from the store. It does no
// other I/O; records left pending by a crash are queued again by the
// first Tick (Run's first step).
func New(o Options) (*Engine, error) {
	if o.Emit == nil || o.Store == nil {
		return nil, fmt.Errorf("%w: Emit and Store are required", ErrOptions)
	}
	e := &Engine{o: o, log: o.Logger, loc: o.Location, now: o.Now, devs: map[string]*device{}, pidx: map[string]int{},
		feedBuf: &batch{}, feedSpace: make(chan struct{}), feedWake: make(chan struct{}, 1)}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.loc == nil {
		e.loc = time.UTC
	}
	if e.now == nil {
		e.now = time.Now
	}
	e.start = e.now()
	for i := range o.Devices {
		d := &o.Devices[i]
		e.devs[d.ID] = &device{cfg: d, seen: e.start, lastText: map[string]string{}}
	}
	byID := map[string]*rule{}
	uses := map[*rule]map[string]bool{} // the names each expression uses
	for i := range o.Rules {
		if o.Rules[i].Disabled {
			continue
		}
		r := &rule{cfg: &o.Rules[i], prog: o.Rules[i].Program, scope: o.Rules[i].Scope.String(), env: map[string]any{}, prev: map[string]float64{}}
		r.env["prev"] = r.prev
		for _, d := range e.devs {
			if r.cfg.Scope.Match(d.cfg) {
				r.devs = append(r.devs, d)
			}
		}
		sort.Slice(r.devs, func(a, b int) bool { return r.devs[a].cfg.ID < r.devs[b].cfg.ID })
		if r.cfg.Kind == config.RuleExpr && r.prog == nil {
			return nil, fmt.Errorf("%w: rule %s: expression not compiled (load the config with config.Parse)", ErrOptions, r.cfg.ID)
		}
		cds := make([]*config.Device, len(r.devs))
		for j, d := range r.devs {
			cds[j] = d.cfg
		}
		var pts []string
		pts, r.textPts, r.boolPts = config.ExprPoints(cds)
		if r.prog != nil {
			var u map[string]bool
			r.vars, u = exprVars(r.prog, pts)
			r.usesPrev, r.usesDT, r.usesDevice = u["prev"], u["dt"], u["device"]
			r.usesClock = u["hour"] || u["minute"] || u["weekday"]
			uses[r] = u
		}
		for _, p := range append(append([]string(nil), r.cfg.Points...), r.vars...) {
			i, ok := e.pidx[p]
			if !ok {
				i = len(e.pidx)
				e.pidx[p] = i
				e.pname = append(e.pname, p)
			}
			if slices.Contains(r.cfg.Points, p) {
				r.pidx = append(r.pidx, i)
			}
		}
		byID[r.cfg.ID] = r
		e.rules = append(e.rules, r)
		e.addRule(r)
	}
	for _, r := range e.rules {
		for _, p := range r.vars {
			xv := exprVar{name: p, idx: e.pidx[p], direct: uses[r][p]}
			if uses[r][config.PrevPrefix+p] {
				xv.prev = config.PrevPrefix + p
			}
			switch {
			case slices.Contains(r.textPts, p):
				xv.kind = varText
			case slices.Contains(r.boolPts, p):
				xv.kind = varBool
			}
			r.xvars = append(r.xvars, xv)
		}
		r.compileFast()
	}
	e.layTracks()
	e.vals, e.gen, e.present = make([]float64, len(e.pidx)), make([]uint64, len(e.pidx)), make([]uint64, len(e.pidx))
	for _, d := range e.devs {
		if d.keep {
			d.lastv, d.lastok = make([]float64, len(e.pidx)), make([]bool, len(e.pidx))
		}
		d.seenPt = make([]int64, len(e.pidx))
		d.named = e.namedBy(d)
		switch {
		case len(d.set.rules) == 0 && len(d.groups) == 0:
			d.route = routeNone
		case d.sync:
			d.route = routeNow
		default:
			d.route = routeLater
		}
	}
	for _, g := range e.groups {
		for _, id := range g.cfg.Inhibits {
			if r := byID[id]; r != nil {
				r.inhibitedBy = append(r.inhibitedBy, g)
			}
		}
	}
	if err := e.load(byID); err != nil {
		return nil, err
	}
	return e, nil
}

// Observe evaluates the rules on readings that were just queued, at once,
// and queues the alarms they raise or clear before it returns (Run calls
// it with what Feed handed over; tests call it directly). Alarm readings
// are ignored, so the engine's own records do not come back to it. It
// must not be called from inside the Emitter.
func (e *Engine) Observe(ctx context.Context, rs []drivers.Reading) {
	var b batch
	var reads [4]fed
	var vals [32]fedVal
	b.reads, b.vals = reads[:0], vals[:0]
	for i := range rs {
		if d, to := e.routeDev(&rs[i]); to != routeNone {
			b = b.add(d, &rs[i], true)
		}
	}
	e.observeBatch(ctx, &b)
}

// batch is readings reduced to what the rules read: Feed hands them over
// to Run so, keeping no reading's map.
type batch struct {
	reads []fed
	vals  []fedVal
	texts []string
}

// fed is one reading of a batch.
type fed struct {
	d      *device
	r      *drivers.Reading // the whole reading when it is evaluated at once (event rules read all of it); nil in Run's batches
	t      int64            // its time, Unix ns
	useNow bool             // no time, or the device's own (which may be off): the gateway's clock when evaluated
	off, n int32            // its values: batch.vals[off : off+n]
}

// fedVal is the value of a point a rule names.
type fedVal struct {
	f    float64 // the number (text == fedNum)
	idx  int32   // the point, by Engine.pidx
	text int32   // the text's index in batch.texts, or fedNum or fedOther
}

const (
	fedNum   = -1 // a number (num)
	fedOther = -2 // neither a number nor a text kept (only its presence counts)
)

// add returns b with reading r of device d appended; whole keeps r itself
// (Observe, event rules). (b by value: its arrays may stay on the
// caller's stack.)
func (b batch) add(d *device, r *drivers.Reading, whole bool) batch {
	f := fed{d: d, off: int32(len(b.vals))}
	if whole {
		f.r = r
	}
	if r.Time.IsZero() || r.DeviceTime {
		f.useNow = true
	} else {
		f.t = r.Time.UnixNano()
	}
	for _, pt := range d.named {
		v, ok := r.Values[pt.name]
		if !ok {
			continue
		}
		fv := fedVal{idx: int32(pt.idx), text: fedOther}
		if x, ok := num(v); ok {
			fv.f, fv.text = x, fedNum
		} else if s, ok := v.AsText(); ok && d.keep {
			fv.text = int32(len(b.texts))
			b.texts = append(b.texts, s)
		}
		b.vals = append(b.vals, fv)
	}
	f.n = int32(len(b.vals)) - f.off
	b.reads = append(b.reads, f)
	return b
}

// merge appends the readings of o to b.
func (b *batch) merge(o *batch) {
	off, toff := int32(len(b.vals)), int32(len(b.texts))
	for _, f := range o.reads {
		f.off += off
		b.reads = append(b.reads, f)
	}
	for _, v := range o.vals {
		if v.text >= 0 {
			v.text += toff
		}
		b.vals = append(b.vals, v)
	}
	b.texts = append(b.texts, o.texts...)
}

// reset empties b, keeping its arrays.
func (b *batch) reset() {
	clear(b.reads) // drop the readings and devices
	clear(b.texts)
	b.reads, b.vals, b.texts = b.reads[:0], b.vals[:0], b.texts[:0]
}

// observeBatch evaluates readings of devices with rules under one lock.
func (e *Engine) observeBatch(ctx context.Context, b *batch) {
	if len(b.reads) == 0 {
		return
	}
	e.mu.Lock()
	now := e.now()
	var trans []transition
	for i := range b.reads {
		trans = e.observe(trans, b, &b.reads[i], now)
	}
	e.observed.Add(uint64(len(b.reads)))
	e.emitLocked(ctx, trans)
}

// Tick evaluates what time alone changes: silences, hold times running
// out, daily windows. Run calls it every second.
func (e *Engine) Tick(ctx context.Context) {
	e.mu.Lock()
	now := e.now()
	var trans []transition
	for _, r := range e.rules {
		switch r.cfg.Kind {
		case config.RuleStale:
			for j, d := range r.devs {
				trans = e.evalStale(trans, r.tracks[j], d, now)
			}
		case config.RuleGroup:
			trans = e.evalGroup(trans, r, now)
		}
	}
	for _, t := range e.tracks {
		if t.rule.cfg.Kind == config.RuleEvent {
			trans = e.expireEvent(trans, t, now)
			continue
		}
		if t.rule.cfg.Kind == config.RuleStale || t.rule.cfg.Kind == config.RuleGroup || (t.alarm == nil && !t.raiseCond) {
			continue
		}
		if t.rule.cfg.Kind == config.RuleWindow && !e.inWindow(t.rule, now) {
			trans = e.step(trans, t, false, true, now, t.seen())
			continue
		}
		trans = e.step(trans, t, t.raiseCond && !e.inhibited(t.rule, t.dev, now), t.clearCond, now, t.seen())
	}
	e.emitLocked(ctx, trans)
}

// emitLocked hands the transitions over to emission in order, releasing
// mu; it also retries records left pending.
func (e *Engine) emitLocked(ctx context.Context, trans []transition) {
	if len(trans) == 0 && e.nretry.Load() == 0 {
		e.mu.Unlock()
		return
	}
	e.emitMu.Lock()
	e.mu.Unlock()
	defer e.emitMu.Unlock()
	e.retryPending(ctx)
	for _, t := range trans {
		e.flush(ctx, t)
	}
	if len(trans) > 0 && e.o.OnChange != nil {
		e.o.OnChange()
	}
}

// addRule links r with its devices.
func (e *Engine) addRule(r *rule) {
	if r.cfg.Kind == config.RuleGroup {
		e.groups = append(e.groups, r)
		r.group = &track{rule: r}
		e.tracks = append(e.tracks, r.group)
		for _, d := range r.devs {
			d.groups = append(d.groups, r)
			d.keep = true
		}
		return
	}
	r.tracks = make([]*track, len(r.devs))
	for _, d := range r.devs {
		d.rules = append(d.rules, r)
		d.keep = d.keep || r.cfg.Kind == config.RuleExpr
		d.sync = d.sync || syncRule(r.cfg)
	}
}

// layTracks gives each device its rule set (shared with the devices that
// have the same rules), its tracks side by side, and its rate rules'
// samples side by side.
func (e *Engine) layTracks() {
	sets := map[string]*ruleSet{}
	for _, d := range e.devs {
		var sig strings.Builder
		for _, r := range d.rules {
			sig.WriteString(r.cfg.ID)
			sig.WriteByte(0)
		}
		set := sets[sig.String()]
		if set == nil {
			set = &ruleSet{rules: d.rules, ring: make([]int, len(d.rules))}
			for k, r := range d.rules {
				set.ring[k] = -1
				if r.cfg.Rate {
					set.ring[k] = set.nring
					set.nring += len(r.cfg.Points)
					set.nsamp += ringLen(r.cfg) * len(r.cfg.Points)
				}
			}
			sets[sig.String()] = set
		}
		d.set, d.rules = set, nil
		d.tracks, d.rings, d.samples = make([]track, len(set.rules)), make([]ring, set.nring), make([]sample, set.nsamp)
		off := 0
		for k, r := range set.rules {
			d.tracks[k] = track{rule: r, dev: d, k: int32(k)}
			r.tracks[slices.Index(r.devs, d)] = &d.tracks[k]
			e.tracks = append(e.tracks, &d.tracks[k])
			if i := set.ring[k]; i >= 0 {
				for j := range r.cfg.Points {
					n := ringLen(r.cfg)
					d.rings[i+j] = ring{off: uint32(off), mask: uint32(n - 1)}
					off += n
				}
			}
		}
	}
	keys := make(map[*track]string, len(e.tracks))
	for _, t := range e.tracks {
		keys[t] = trackKey(t.rule, t.target())
	}
	sort.Slice(e.tracks, func(i, j int) bool { return keys[e.tracks[i]] < keys[e.tracks[j]] })
}

// namedPoint is a point a rule names, by name and Engine.pidx index.
type namedPoint struct {
	name string
	idx  int
}

// namedBy lists the points the rules in d's scope name (a reading's
// other values are not looked at).
func (e *Engine) namedBy(d *device) []namedPoint {
	seen := map[int]bool{}
	var out []namedPoint
	add := func(r *rule) {
		for j, p := range r.cfg.Points {
			if i := r.pidx[j]; !seen[i] {
				seen[i] = true
				out = append(out, namedPoint{p, i})
			}
		}
		for _, xv := range r.xvars {
			if !seen[xv.idx] {
				seen[xv.idx] = true
				out = append(out, namedPoint{xv.name, xv.idx})
			}
		}
	}
	for _, r := range d.set.rules {
		add(r)
	}
	for _, g := range d.groups {
		add(g)
	}
	return out
}

// exprVar is a point an expression names (as itself, as prev.<point> or
// both): its index in Engine.pidx and its type in the environment.
type exprVar struct {
	name   string
	idx    int
	kind   int    // varNum, varText or varBool
	direct bool   // named as itself
	prev   string // its name as prev.<point> ("" if not named so)
}

// compileFast gives an expression rule its closures, and what fills their
// slots, when its program is one the function compileFast covers.
func (r *rule) compileFast() {
	if r.prog == nil {
		return
	}
	fills := map[string]fastFill{"dt": {kind: fillDT}, "hour": {kind: fillHour}, "minute": {kind: fillMinute}, "weekday": {kind: fillWeekday}}
	for _, xv := range r.xvars {
		if xv.kind != varText {
			fills[xv.name] = fastFill{kind: fillPoint, idx: xv.idx}
		}
		if xv.prev != "" {
			fills[xv.prev] = fastFill{kind: fillPrev, idx: xv.idx}
		}
	}
	fx := compileFast(r.prog)
	if fx == nil {
		return
	}
	fill := make([]fastFill, len(fx.names))
	for i, n := range fx.names {
		f, ok := fills[n]
		if !ok {
			return // a name the engine does not fill: the VM runs it
		}
		fill[i] = f
	}
	r.fast, r.fill, r.slots = fx, fill, make([]float64, len(fx.names))
}

// fastFill says what goes into a slot of a fast expression.
type fastFill struct {
	kind int // fillPoint, ...
	idx  int // the point's index in Engine.pidx
}

const (
	fillPoint = iota // the point's value (a bool as 0 or 1)
	fillPrev         // its value in the previous reading (0 if none)
	fillDT           // seconds since the previous reading
	fillHour         // the clock in gateway.timezone
	fillMinute
	fillWeekday
)

// Types of an expression's points.
const (
	varNum = iota
	varText
	varBool
)

// exprVars lists the points an expression names and the other names of
// its environment it uses (only they are put in it on each run).
func exprVars(p *vm.Program, points []string) ([]string, map[string]bool) {
	var c identCollector
	node := p.Node()
	ast.Walk(&node, &c)
	var out []string
	for _, pt := range points {
		if c.names[pt] || c.names[config.PrevPrefix+pt] {
			out = append(out, pt)
		}
	}
	return out, c.names
}

type identCollector struct{ names map[string]bool }

func (c *identCollector) Visit(n *ast.Node) {
	if id, ok := (*n).(*ast.IdentifierNode); ok {
		if c.names == nil {
			c.names = map[string]bool{}
		}
		c.names[id.Value] = true
	}
}

// Feed hands readings that were just queued to Run, which evaluates
// them (the pipeline's Observe hook in the gateway): the ingest path pays
// a copy under a mutex, not the evaluation. It returns at once unless
// feedLen readings wait for Run; then it waits, at most until ctx ends.
// Readings of a device with an event rule in scope are evaluated at once
// instead, and the alarms they raise are queued before Feed returns: the
// field message that carried an SOS is acknowledged only then, so a crash
// in between makes the device send it again rather than lose the alarm.
func (e *Engine) Feed(ctx context.Context, rs []drivers.Reading) {
	// The readings are reduced outside the lock (the map lookups), into
	// arrays on the stack for the usual few readings.
	var later, now batch
	var reads [4]fed
	var vals [32]fedVal
	later.reads, later.vals = reads[:0], vals[:0]
	for i := range rs {
		switch d, to := e.routeDev(&rs[i]); to {
		case routeNow:
			now = now.add(d, &rs[i], true)
		case routeLater:
			later = later.add(d, &rs[i], false)
		}
	}
	if len(later.reads) > 0 && !e.handOver(ctx, &later) {
		return
	}
	e.observeBatch(ctx, &now)
}

// handOver appends b to what Run takes next; it waits while feedLen
// readings wait (false: ctx ended first). Readings Run would not take
// never wait here: the engine's own alarm records come back to Feed from
// inside Run.
func (e *Engine) handOver(ctx context.Context, b *batch) bool {
	for {
		e.feedMu.Lock()
		if len(e.feedBuf.reads) < feedLen {
			break
		}
		space := e.feedSpace
		e.feedMu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return false
		}
	}
	e.feedBuf.merge(b)
	wake := len(e.feedBuf.reads) >= feedLen/2
	e.feedMu.Unlock()
	if wake { // else Run takes them within drainEvery
		select {
		case e.feedWake <- struct{}{}:
		default:
		}
	}
	return true
}

// Where Feed sends a reading.
const (
	routeNone  = iota // no rule watches it (or it is an alarm record)
	routeNow          // evaluated by Feed's caller
	routeLater        // handed to Run
)

func (e *Engine) routeDev(r *drivers.Reading) (*device, int) {
	d := e.devs[r.Device]
	if d == nil || r.Class == drivers.Alarm {
		return nil, routeNone
	}
	return d, int(d.route)
}

// Run evaluates what Feed hands over and ticks every second until ctx
// ends; the first tick queues records a crash left pending.
func (e *Engine) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	drain := time.NewTicker(drainEvery)
	defer drain.Stop()
	e.Tick(ctx)
	spare := &batch{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.feedWake:
		case <-drain.C:
		case <-tick.C:
			e.Tick(ctx)
			continue
		}
		spare = e.drainFeed(ctx, spare)
	}
}

// drainFeed takes what Feed gathered (swapping in the empty spare) and
// evaluates it; it returns the batch to use as the spare next time.
func (e *Engine) drainFeed(ctx context.Context, spare *batch) *batch {
	e.feedMu.Lock()
	if len(e.feedBuf.reads) == 0 {
		e.feedMu.Unlock()
		return spare
	}
	b := e.feedBuf
	e.feedBuf = spare
	close(e.feedSpace)
	e.feedSpace = make(chan struct{})
	e.feedMu.Unlock()
	e.observeBatch(ctx, b)
	b.reset()
	return b
}

// Active returns the active alarms, by alarm id.
func (e *Engine) Active() []Alarm {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Alarm
	for _, t := range e.tracks {
		if t.alarm != nil && !t.alarm.Suppressed {
			out = append(out, *t.alarm)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
