package pulse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"time"

	"github.com/townlink/townlink/drivers"
)

// Defaults, in one place.
const (
	// DefaultDebounce suits reed contacts (protocols.md §3.4: 20-50 ms).
	DefaultDebounce = 20 * time.Millisecond
	// DefaultInterval is the report interval of counters and traffic
	// loops.
	DefaultInterval = time.Minute
)

// Input is what a pin is wired to.
type Input uint8

// Inputs.
const (
	Counter Input = iota // a meter's pulse output: count rising edges
	Door                 // a door or tamper contact: alarm on change
	Flood                // a flood sensor: alarm on change
	Contact              // any contact: event on change
	Traffic              // a traffic loop: vehicles per interval
)

// numInputs is the number of Input values.
const numInputs = 5

func (i Input) String() string {
	switch i {
	case Counter:
		return "counter"
	case Door:
		return "door"
	case Flood:
		return "flood"
	case Contact:
		return "contact"
	case Traffic:
		return "traffic"
	}
	return fmt.Sprintf("Input(%d)", uint8(i))
}

// ParseInput accepts counter, door, flood, contact or traffic.
func ParseInput(s string) (Input, error) {
	for i := range Input(numInputs) {
		if s == i.String() {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%w: pulse: input %q (want counter, door, flood, contact or traffic)", drivers.ErrConfig, s)
}

// counts reports whether the input counts pulses (and needs a store).
func (i Input) counts() bool { return i == Counter || i == Traffic }

// Pin is one digital input with timestamped edges, as hardware/gpio.Input
// provides it (this package may not import hardware/gpio). Times are on
// the pin's clock: the wall clock for a real line, simulated time for a
// simulated one.
type Pin interface {
	// Level returns the current level (true: high) and the pin's time.
	Level(ctx context.Context) (high bool, now time.Time, err error)
	// NextEdge returns the next edge: the level after it and its time. It
	// waits until ctx ends or the pin's clock reaches deadline (zero: no
	// deadline); a passed deadline returns the current level and time with
	// an error satisfying errors.Is(err, os.ErrDeadlineExceeded).
	NextEdge(ctx context.Context, deadline time.Time) (high bool, at time.Time, err error)
}

// Config describes one GPIO input device.
type Config struct {
	Device string // device id
	Input  Input
	// Invert the line: for a contact that pulls the line low when active
	// (a reed switch to ground with a pull-up). Counting and states see
	// the inverted level.
	Invert bool
	// Debounce: two accepted changes are at least this far apart (see
	// doc.go). 0 means DefaultDebounce; negative means none.
	Debounce time.Duration
	// PerPulse is what one pulse stands for, e.g. Dec(1,-2) m³ (10 L per
	// pulse) or Dec(1,-3) kWh (1000 imp/kWh). Counters only; KindNone
	// reports the count alone.
	PerPulse drivers.Value
	// Quantity is the point name of Start + count × PerPulse, e.g.
	// flow_m3 or energy_kwh.
	Quantity string
	// Start is the meter's reading when the count was zero (KindNone: 0).
	Start drivers.Value
	// Interval between telemetry readings. Counters and traffic loops: 0
	// means DefaultInterval. Door, flood and contact: 0 means no periodic
	// state reading.
	Interval time.Duration
	// Store keeps the count of counters and traffic loops; required for
	// them.
	Store CounterStore
	// Logger receives store and emit failures; nil discards.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	switch {
	case c.Debounce == 0:
		c.Debounce = DefaultDebounce
	case c.Debounce < 0:
		c.Debounce = 0
	}
	if c.Interval == 0 && c.Input.counts() {
		c.Interval = DefaultInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// reserved reports point names a Quantity may not take.
func reserved(s string) bool {
	switch s {
	case "count", "state", "event", "vehicles", "interval_s":
		return true
	}
	return false
}

// Validate checks the configuration (zero values take their defaults).
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: pulse: device %q: %s", drivers.ErrConfig, c.Device, fmt.Sprintf(format, a...))
	}
	if c.Device == "" {
		return bad("no device id")
	}
	if c.Input >= numInputs {
		return bad("input %d (want counter, door, flood, contact or traffic)", c.Input)
	}
	if c.Interval < 0 {
		return bad("interval %v is negative", c.Interval)
	}
	if c.Interval%time.Millisecond != 0 {
		return bad("interval %v is not whole milliseconds", c.Interval)
	}
	if c.Input.counts() && c.Store == nil {
		return bad("a %s needs a counter store (it must not restart from zero)", c.Input)
	}
	if c.Input != Counter {
		if c.PerPulse.Kind() != drivers.KindNone || c.Quantity != "" || c.Start.Kind() != drivers.KindNone {
			return bad("per_pulse, quantity and start are for counters, not a %s", c.Input)
		}
		return nil
	}
	hasPP := c.PerPulse.Kind() != drivers.KindNone
	switch {
	case hasPP != (c.Quantity != ""):
		return bad("per_pulse and quantity go together (e.g. per_pulse 0.01, quantity flow_m3)")
	case !hasPP && c.Start.Kind() != drivers.KindNone:
		return bad("start needs per_pulse and quantity")
	}
	if !hasPP {
		return nil
	}
	if k := c.PerPulse.Kind(); k != drivers.KindDecimal && k != drivers.KindInt {
		return bad("per_pulse %s is not a decimal", c.PerPulse)
	}
	if r := c.PerPulse.Rat(); r.Sign() <= 0 {
		return bad("per_pulse %s must be greater than 0", c.PerPulse)
	}
	if k := c.Start.Kind(); k != drivers.KindNone && k != drivers.KindDecimal && k != drivers.KindInt {
		return bad("start %s is not a decimal", c.Start)
	}
	if !validPoint(c.Quantity) || reserved(c.Quantity) {
		return bad("quantity %q is not a point name (lower case, digits, '_'; not count/state/event/vehicles/interval_s)", c.Quantity)
	}
	if _, err := drivers.Scale(0, c.PerPulse, c.Start); err != nil {
		return bad("start: %v", err)
	}
	return nil
}

func validPoint(s string) bool {
	if s == "" || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// PinHealth is implemented by a pin that recovers from line errors by
// itself (hardware/gpio.Input): its NextEdge does not return them, so
// Health asks Err, the error keeping the line away (nil while it works).
type PinHealth interface {
	Err() error
}

// Health is a snapshot of a device's condition, for the gateway's health
// report and metrics.
type Health struct {
	Running  bool   // Run has read the pin and has not returned
	Pin      error  // the error keeping the pin away, or the one Run stopped with
	Store    error  // the last failed count save; nil once a save works
	Readings uint64 // readings queued
	Errors   uint64 // readings not queued: emit failed, or held back because the count was not saved
}

// Device is one GPIO input: a counter, a traffic loop, or a door, flood or
// contact input. It implements drivers.Source.
type Device struct {
	c   Config
	pin Pin
	log *slog.Logger

	mu sync.Mutex
	h  Health
}

// Health reports the device's condition; safe to call while Run runs.
func (d *Device) Health() Health {
	d.mu.Lock()
	h := d.h
	d.mu.Unlock()
	if ph, ok := d.pin.(PinHealth); ok && h.Running && h.Pin == nil {
		h.Pin = ph.Err()
	}
	return h
}

func (d *Device) setHealth(f func(h *Health)) {
	d.mu.Lock()
	f(&d.h)
	d.mu.Unlock()
}

var _ drivers.Source = (*Device)(nil)

// New returns a Device reading pin. It does no I/O.
func New(c Config, pin Pin) (*Device, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if pin == nil {
		return nil, fmt.Errorf("%w: pulse: device %q: no pin", drivers.ErrConfig, c.Device)
	}
	c = c.withDefaults()
	return &Device{c: c, pin: pin, log: c.Logger.With("device", c.Device)}, nil
}

// Config returns the configuration with defaults applied.
func (d *Device) Config() Config { return d.c }

// run is the state of one Run.
type run struct {
	d     *Device
	emit  func(drivers.Reading) error
	deb   *debouncer
	count uint64    // accepted rising edges, cumulative (counters)
	saved uint64    // last durably saved count
	from  uint64    // count at the start of the current report interval
	since time.Time // start of the current report interval
	next  time.Time // next report; zero: none
	state bool      // debounced level (inputs)
}

// Run reads the pin and emits readings until ctx ends (it then returns
// ctx's error). A counter loads its count from the store first, and saves
// it before every reading that contains it and when it stops. Store and
// emit failures are logged and do not stop it; a reading whose count
// could not be saved is not emitted.
func (d *Device) Run(ctx context.Context, emit func(drivers.Reading) error) error {
	c := d.c
	r := &run{d: d, emit: emit}
	if c.Input.counts() {
		n, _, err := c.Store.Load(c.Device)
		if err != nil {
			return fmt.Errorf("pulse: device %q: load count: %w", c.Device, err)
		}
		r.count, r.saved, r.from = n, n, n
	}
	high, now, err := d.pin.Level(ctx)
	if err != nil {
		err = fmt.Errorf("pulse: device %q: read pin: %w", c.Device, err)
		d.setHealth(func(h *Health) { h.Pin = err })
		return err
	}
	d.setHealth(func(h *Health) { h.Running, h.Pin = true, nil })
	r.state = high != c.Invert
	r.deb = newDebouncer(c.Debounce, r.state)
	r.since = now
	if c.Interval > 0 {
		r.next = now.Add(c.Interval)
	}
	if !c.Input.counts() {
		r.stateReading(r.state, now)
	}
	for {
		deadline := r.next
		if t, ok := r.deb.due(); ok && (deadline.IsZero() || t.Before(deadline)) {
			deadline = t
		}
		high, at, err := d.pin.NextEdge(ctx, deadline)
		timeout := errors.Is(err, os.ErrDeadlineExceeded)
		if err != nil && !timeout {
			return r.stop(ctx, err)
		}
		r.advance(at)
		if !timeout {
			if ch, ok := r.deb.edge(high != c.Invert, at); ok {
				r.accept(ch)
			}
		}
	}
}

// advance handles what is due up to t, in time order: settles of the
// debouncer and report intervals (a settle at a report's time comes
// first; a report at an edge's time comes before the edge).
func (r *run) advance(t time.Time) {
	for {
		st, settle := r.deb.due()
		settle = settle && !st.After(t)
		report := !r.next.IsZero() && !r.next.After(t)
		switch {
		case settle && (!report || !st.After(r.next)):
			r.accept(r.deb.settle())
		case report:
			r.report(r.next)
			r.next = r.next.Add(r.d.c.Interval)
			if !r.next.After(t) { // the pin's clock jumped (suspend): skip, do not burst
				r.next = t.Add(r.d.c.Interval)
			}
		default:
			return
		}
	}
}

// accept handles a debounced change.
func (r *run) accept(ch change) {
	r.state = ch.high
	switch in := r.d.c.Input; in {
	case Counter, Traffic:
		if ch.high {
			r.count++
		}
	default:
		r.stateReading(ch.high, ch.at)
	}
}

// stateReading emits a door, flood or contact state, as an event (the
// gateway's rules engine raises a door opened or water detected as an
// alarm: default rules tamper and flood).
func (r *run) stateReading(high bool, at time.Time) {
	v := map[string]drivers.Value{"state": drivers.Bool(high)}
	switch in := r.d.c.Input; {
	case in == Door && high:
		v["event"] = drivers.Text("door_open")
	case in == Door:
		v["event"] = drivers.Text("door_closed")
	case in == Flood && high:
		v["event"] = drivers.Text("flood")
	case in == Flood:
		v["event"] = drivers.Text("flood_cleared")
	}
	r.send(drivers.Reading{Device: r.d.c.Device, Class: drivers.Event, Time: at, Values: v})
}

// report emits the telemetry reading of the interval ending at t.
func (r *run) report(t time.Time) {
	c := r.d.c
	if !c.Input.counts() {
		r.send(drivers.Reading{Device: c.Device, Class: drivers.Telemetry, Time: t,
			Values: map[string]drivers.Value{"state": drivers.Bool(r.state)}})
		return
	}
	if !r.save() {
		return // never report a count that is not durable
	}
	n := r.count
	v := map[string]drivers.Value{"count": drivers.Int(int64(min(n, math.MaxInt64)))}
	if c.Quantity != "" {
		q, err := drivers.Scale(int64(min(n, math.MaxInt64)), c.PerPulse, c.Start)
		if err != nil {
			r.d.log.Error("pulse: scaled quantity", "count", n, "err", err)
		} else {
			v[c.Quantity] = q
		}
	}
	if c.Input == Traffic {
		v["vehicles"] = drivers.Int(int64(n - r.from))
		v["interval_s"] = seconds(t.Sub(r.since))
	}
	if r.send(drivers.Reading{Device: c.Device, Class: drivers.Telemetry, Time: t, Values: v}) {
		// A reading that was not kept leaves the interval open: the next
		// one covers both (vehicles and interval_s together).
		r.from, r.since = n, t
	}
}

// save makes the count durable; false when the store failed.
func (r *run) save() bool {
	if r.count == r.saved {
		return true
	}
	if err := r.d.c.Store.Save(r.d.c.Device, r.count); err != nil {
		r.d.log.Error("pulse: count not saved; reading held back", "count", r.count, "err", err)
		r.d.setHealth(func(h *Health) { h.Store = err; h.Errors++ })
		return false
	}
	r.saved = r.count
	r.d.setHealth(func(h *Health) { h.Store = nil })
	return true
}

// send emits a reading; false when it was not kept.
func (r *run) send(rd drivers.Reading) bool {
	if err := r.emit(rd); err != nil {
		r.d.log.Error("pulse: reading not queued", "class", rd.Class, "err", err)
		r.d.setHealth(func(h *Health) { h.Errors++ })
		return false
	}
	r.d.setHealth(func(h *Health) { h.Readings++ })
	return true
}

// stop saves the count and returns why Run ended.
func (r *run) stop(ctx context.Context, err error) error {
	c := r.d.c
	if ctx.Err() == nil {
		err = fmt.Errorf("pulse: device %q: pin: %w", c.Device, err)
		r.d.setHealth(func(h *Health) { h.Running, h.Pin = false, err })
	} else {
		err = ctx.Err()
		r.d.setHealth(func(h *Health) { h.Running = false })
	}
	if c.Input.counts() && r.count != r.saved {
		if serr := c.Store.Save(c.Device, r.count); serr != nil {
			return errors.Join(err, fmt.Errorf("pulse: device %q: save count at stop: %w", c.Device, serr))
		}
	}
	return err
}

// seconds is d as an exact decimal number of seconds (whole milliseconds).
func seconds(d time.Duration) drivers.Value {
	m, e := d.Milliseconds(), int32(-3)
	for e < 0 && m%10 == 0 {
		m /= 10
		e++
	}
	return drivers.Dec(m, e)
}
