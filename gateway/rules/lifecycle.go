package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/townlink/townlink/drivers"
)

// Alarm events, the "event" point of an alarm record.
const (
	EventRaised     = "raised"
	EventCleared    = "cleared"
	EventSuppressed = "suppressed"
	EventAck        = "alarm_ack" // on the events stream: the platform acknowledged an alarm
)

// Alarm is an active alarm, as kept in the store and shown in the status.
type Alarm struct {
	ID       string    `json:"id"`
	Rule     string    `json:"rule"`
	Severity int       `json:"sev"`
	Scope    string    `json:"scope"`  // device:<id> or the rule's scope
	Device   string    `json:"dev"`    // the record's device (the gateway for a scope)
	Target   string    `json:"target"` // the device id, or the rule's scope
	Point    string    `json:"point,omitempty"`
	Value    float64   `json:"value,omitempty"`
	Limit    float64   `json:"limit,omitempty"`
	HasValue bool      `json:"has_value,omitempty"`
	Message  string    `json:"msg"`
	Since    time.Time `json:"since"`
	Raised   time.Time `json:"raised"`
	Acked    bool      `json:"acked,omitempty"`
	// Detail: the raising reading's values (event rules), on the raised
	// record beside the alarm's own points.
	Detail map[string]Detail `json:"detail,omitempty"`

	// Suppressed: raised beyond the rule's rate limit; no record was (or
	// will be, for its clear) sent. Never stored.
	Suppressed bool `json:"-"`
	// SuppressedN: raises suppressed before this one (on its record).
	SuppressedN int `json:"suppressed,omitempty"`
	// Pending: the record ("raised" or "cleared") written to the store
	// before it was queued; "" once queued.
	Pending string `json:"pending,omitempty"`
}

// Short is the alarm in a few words, for the status.
func (a *Alarm) Short() string {
	s := fmt.Sprintf("sev%d %s %s: %s", a.Severity, a.Rule, a.Scope, a.Message)
	if a.Acked {
		s += " (acked)"
	}
	return s
}

// transition is one record to queue, in order.
type transition struct {
	event string
	a     Alarm
	at    time.Time
	until time.Time // suppressed: when raising may resume
	cv    float64   // cleared: the value that cleared it
	chas  bool
}

// allow applies the rule's rate limit at now.
func (r *rule) allow(now time.Time) bool {
	cut := now.Add(-r.cfg.RaisesPer)
	i := 0
	for i < len(r.raises) && !r.raises[i].After(cut) {
		i++
	}
	r.raises = r.raises[i:]
	if len(r.raises) >= r.cfg.Raises {
		return false
	}
	r.raises = append(r.raises, now)
	return true
}

func (e *Engine) raise(trans []transition, tr *track, now time.Time) []transition {
	r := tr.rule
	a := &Alarm{
		ID: fmt.Sprintf("%s:%s:%d", r.cfg.ID, tr.target(), now.UnixMilli()), Rule: r.cfg.ID, Severity: r.cfg.Severity,
		Target: tr.target(), Scope: r.scope, Device: e.o.Gateway, Since: time.Unix(0, tr.pendSince), Raised: now,
	}
	if tr.dev != nil {
		a.Scope, a.Device = "device:"+tr.dev.cfg.ID, tr.dev.cfg.ID
	}
	c := tr.c()
	if c.obs.has {
		a.Point, a.Value, a.Limit, a.HasValue = c.obs.point, c.obs.value, c.obs.limit, true
	}
	if c.ev != nil {
		a.Detail, c.ev.detail = c.ev.detail, nil
	}
	a.Message = e.render(r, a)
	tr.alarm, c.clearSince = a, 0
	if !r.allow(now) {
		a.Suppressed = true
		r.suppressed++
		e.suppressed.Add(1)
		if r.reported {
			return trans
		}
		r.reported = true
		return append(trans, transition{event: EventSuppressed, a: *a, at: now, until: r.raises[0].Add(r.cfg.RaisesPer)})
	}
	a.SuppressedN, r.suppressed, r.reported = r.suppressed, 0, false
	return append(trans, transition{event: EventRaised, a: *a, at: now})
}

func (e *Engine) clear(trans []transition, tr *track, now time.Time) []transition {
	a := tr.alarm
	tr.alarm, tr.pendSince = nil, 0
	o := tr.seen()
	if c := tr.cold; c != nil {
		c.clearSince = 0
		if c.ev == nil {
			tr.cold = nil // nothing cold is needed until it holds again
		}
	}
	if a.Suppressed {
		return trans
	}
	return append(trans, transition{event: EventCleared, a: *a, at: now, cv: o.value, chas: o.has && a.HasValue})
}

func fnum(v float64) string {
	if math.Abs(v) < 1e12 {
		v = math.Round(v*1000) / 1000
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func (e *Engine) render(r *rule, a *Alarm) string {
	value, limit := "", ""
	if a.HasValue {
		value, limit = fnum(a.Value), fnum(a.Limit)
	}
	dev := a.Target
	if a.Device == e.o.Gateway && !strings.HasPrefix(a.Scope, "device:") {
		dev = a.Scope
	}
	return strings.NewReplacer("{rule}", r.cfg.ID, "{device}", dev, "{scope}", a.Scope, "{point}", a.Point,
		"{value}", value, "{limit}", limit).Replace(r.cfg.Message)
}

// reading is the record of a transition.
func (t *transition) reading() drivers.Reading {
	a := &t.a
	v := map[string]drivers.Value{
		"event": drivers.Text(t.event), "alarm_id": drivers.Text(a.ID), "rule": drivers.Text(a.Rule),
		"severity": drivers.Int(int64(a.Severity)), "scope": drivers.Text(a.Scope), "message": drivers.Text(a.Message),
		"since": drivers.Int(a.Since.UnixMilli()),
	}
	if a.Point != "" {
		v["point"] = drivers.Text(a.Point)
	}
	switch t.event {
	case EventRaised:
		if a.HasValue {
			v["value"], v["limit"] = drivers.Float(a.Value), drivers.Float(a.Limit)
		}
		if a.SuppressedN > 0 {
			v["suppressed"] = drivers.Int(int64(a.SuppressedN))
		}
		for k, dt := range a.Detail {
			if _, taken := v[k]; !taken {
				if x, ok := dt.Value(); ok {
					v[k] = x
				}
			}
		}
	case EventCleared:
		v["raised"] = drivers.Int(a.Raised.UnixMilli())
		if t.chas {
			v["value"], v["limit"] = drivers.Float(t.cv), drivers.Float(a.Limit)
		}
	case EventSuppressed:
		delete(v, "alarm_id")
		v["until"] = drivers.Int(t.until.UnixMilli())
		v["message"] = drivers.Text(fmt.Sprintf("rule %s raised its limit of alarms; further raises are suppressed until %s", a.Rule, t.until.UTC().Format(time.RFC3339)))
	}
	return drivers.Reading{Device: a.Device, Class: drivers.Alarm, Time: t.at, Values: v}
}

// flush stores, queues and settles one transition (emitMu held). A
// transition that could not be queued waits in e.retry, and so does every
// one after it: records leave in order.
func (e *Engine) flush(ctx context.Context, t transition) {
	if len(e.retry) > 0 {
		e.retry = append(e.retry, t)
		e.nretry.Store(int32(len(e.retry)))
		return
	}
	if !e.send(ctx, t) {
		e.retry = append(e.retry, t)
		e.nretry.Store(int32(len(e.retry)))
	}
}

// send runs the durable steps of a transition; false if it was not queued.
func (e *Engine) send(ctx context.Context, t transition) bool {
	if t.event != EventSuppressed {
		a := t.a
		a.Pending = t.event
		e.put(&a)
	}
	if err := e.o.Emit(ctx, []drivers.Reading{t.reading()}); err != nil {
		e.log.Warn("alarm record not queued; will retry", "alarm", t.a.ID, "event", t.event, "err", err)
		return false
	}
	switch t.event {
	case EventRaised:
		e.raised.Add(1)
		a := t.a
		a.Pending = ""
		e.put(&a)
	case EventCleared:
		e.cleared.Add(1)
		if err := e.o.Store.Delete(t.a.ID); err != nil {
			e.log.Error("alarm state not deleted", "alarm", t.a.ID, "err", err)
		}
	}
	e.log.Info("alarm "+t.event, "alarm", t.a.ID, "rule", t.a.Rule, "severity", t.a.Severity, "scope", t.a.Scope)
	return true
}

func (e *Engine) put(a *Alarm) {
	b, err := json.Marshal(a)
	if err == nil {
		err = e.o.Store.Put(a.ID, b)
	}
	if err != nil {
		e.log.Error("alarm state not stored", "alarm", a.ID, "err", err)
	}
}

// retryPending queues again what could not be queued (emitMu held).
func (e *Engine) retryPending(ctx context.Context) {
	for len(e.retry) > 0 {
		if !e.send(ctx, e.retry[0]) {
			break
		}
		e.retry = e.retry[1:]
	}
	e.nretry.Store(int32(len(e.retry)))
}

// load restores the alarms from the store: active ones stay active,
// pending records are queued again (same alarm id), alarms of rules no
// longer configured are cleared.
func (e *Engine) load(byID map[string]*rule) error {
	var bad []string
	err := e.o.Store.Scan(func(key string, val []byte) error {
		var a Alarm
		if err := json.Unmarshal(val, &a); err != nil || a.ID != key {
			bad = append(bad, key)
			return nil
		}
		r := byID[a.Rule]
		if r == nil {
			if a.Pending != EventCleared {
				a.Message = "rule " + a.Rule + " is no longer configured"
			}
			e.retry = append(e.retry, transition{event: EventCleared, a: a, at: e.start})
			return nil
		}
		var tr *track
		if d := e.devs[a.Target]; d != nil && a.Scope == "device:"+a.Target {
			tr = r.trackFor(d)
		} else {
			tr = r.trackFor(nil)
		}
		if tr == nil { // the device left the rule's scope
			e.retry = append(e.retry, transition{event: EventCleared, a: a, at: e.start})
			return nil
		}
		switch a.Pending {
		case EventCleared:
			e.retry = append(e.retry, transition{event: EventCleared, a: a, at: e.start})
		case EventRaised:
			tr.alarm = &a
			e.retry = append(e.retry, transition{event: EventRaised, a: a, at: a.Raised})
		default:
			tr.alarm = &a
		}
		tr.settle()
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	if len(bad) > 0 {
		e.log.Error("unreadable alarm states dropped", "keys", bad)
		if err := e.o.Store.Delete(bad...); err != nil {
			return fmt.Errorf("%w: %w", ErrStore, err)
		}
	}
	e.nretry.Store(int32(len(e.retry)))
	return nil
}

// Ack records the platform's acknowledgement of an active alarm: the
// alarm stays active (only its condition clears it); the ack is stored
// and queued as an alarm_ack event.
func (e *Engine) Ack(ctx context.Context, id, by string) error {
	e.mu.Lock()
	var a *Alarm
	for _, t := range e.tracks {
		if t.alarm != nil && t.alarm.ID == id && !t.alarm.Suppressed {
			a = t.alarm
		}
	}
	if a == nil {
		e.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrUnknownAlarm, id)
	}
	a.Acked = true
	c := *a
	e.emitMu.Lock()
	e.mu.Unlock()
	if len(e.retry) == 0 {
		e.put(&c)
	}
	e.emitMu.Unlock()
	// Queued outside emitMu: the event passes Observe on its way.
	v := map[string]drivers.Value{"event": drivers.Text(EventAck), "alarm_id": drivers.Text(id), "rule": drivers.Text(c.Rule)}
	if by != "" {
		v["by"] = drivers.Text(by)
	}
	return e.o.Emit(ctx, []drivers.Reading{{Device: c.Device, Class: drivers.Event, Time: e.now(), Values: v}})
}
