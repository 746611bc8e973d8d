package rules

import (
	"slices"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/config"
)

// evalEvent evaluates an event rule: a reading whose event is one of the
// rule's On (any reading when On is empty) and whose text points are as
// Where says raises the alarm, or clears it when its State point is
// false. The raising reading's values ride on the raised record (an
// SOS's position, a long wait's ticket).
func (e *Engine) evalEvent(trans []transition, tr *track, d *device, r *drivers.Reading, now time.Time) []transition {
	cfg := tr.rule.cfg
	if len(cfg.On) > 0 {
		ev, _ := r.Values["event"].AsText()
		if !slices.Contains(cfg.On, ev) {
			return trans
		}
	}
	for k, want := range cfg.Where {
		if got, _ := r.Values[k].AsText(); got != want {
			return trans
		}
	}
	raise := true
	if cfg.State != "" {
		v, ok := r.Values[cfg.State]
		switch {
		case ok:
			f, isNum := num(v)
			raise = isNum && f != 0
		case len(cfg.On) == 0:
			return trans // not a reading of the state
		}
	}
	tr.raiseCond, tr.clearCond = raise, !raise
	if raise {
		c := tr.c()
		if c.ev == nil {
			c.ev = &eventState{}
		}
		c.ev.hit = now.UnixNano()
		if tr.alarm == nil {
			c.ev.detail = details(r.Values)
		}
	}
	return e.step(trans, tr, raise && !e.inhibited(tr.rule, d, now), !raise, now, obs{})
}

// eventState is what an event rule's track keeps besides the common
// fields (kept apart: the tracks of the other kinds stay small).
type eventState struct {
	hit    int64             // the last raising reading (Unix ns)
	detail map[string]Detail // its values, for the raised record
}

// expireEvent clears an event rule's alarm that no raising reading has
// renewed for the rule's ClearAfter (Tick).
func (e *Engine) expireEvent(trans []transition, tr *track, now time.Time) []transition {
	cfg := tr.rule.cfg
	if tr.alarm == nil || cfg.ClearAfter <= 0 {
		return trans
	}
	var last int64
	if tr.cold != nil && tr.cold.ev != nil {
		last = tr.cold.ev.hit
	}
	if last == 0 { // raised before a restart, which forgot the renewals: count from the start
		last = max(tr.alarm.Raised.UnixNano(), e.start.UnixNano())
	}
	if now.UnixNano()-last < int64(cfg.ClearAfter) {
		return trans
	}
	tr.raiseCond, tr.clearCond = false, true
	trans = e.clear(trans, tr, now)
	tr.settle()
	return trans
}

// Detail is one value of the reading that raised an event rule's alarm,
// in a form the alarm's stored state keeps exactly.
type Detail struct {
	Kind drivers.Kind `json:"k"`
	S    string       `json:"s,omitempty"`
	I    int64        `json:"i,omitempty"` // an int, or a decimal's mantissa
	E    int32        `json:"e,omitempty"` // a decimal's exponent
	F    float64      `json:"f,omitempty"`
	B    bool         `json:"b,omitempty"`
}

// IsAlarmPoint reports whether k is one of an alarm record's own points
// (a report's value of the same name is not carried on the record; a
// report's active flag neither).
func IsAlarmPoint(k string) bool {
	switch k {
	case "event", "alarm_id", "rule", "severity", "scope", "message", "since", "point",
		"value", "limit", "suppressed", "raised", "until", "active":
		return true
	}
	return false
}

func details(vals map[string]drivers.Value) map[string]Detail {
	out := make(map[string]Detail, len(vals))
	for k, v := range vals {
		if IsAlarmPoint(k) {
			continue
		}
		dt := Detail{Kind: v.Kind()}
		switch v.Kind() {
		case drivers.KindDecimal:
			dt.I, dt.E, _ = v.Decimal()
		case drivers.KindInt:
			dt.I, _ = v.AsInt()
		case drivers.KindFloat:
			dt.F, _ = v.AsFloat()
		case drivers.KindBool:
			dt.B, _ = v.AsBool()
		case drivers.KindText:
			dt.S, _ = v.AsText()
		default:
			continue
		}
		out[k] = dt
	}
	return out
}

// Value is the detail as a driver value.
func (dt Detail) Value() (drivers.Value, bool) {
	switch dt.Kind {
	case drivers.KindDecimal:
		return drivers.Dec(dt.I, dt.E), true
	case drivers.KindInt:
		return drivers.Int(dt.I), true
	case drivers.KindFloat:
		return drivers.Float(dt.F), true
	case drivers.KindBool:
		return drivers.Bool(dt.B), true
	case drivers.KindText:
		return drivers.Text(dt.S), true
	}
	return drivers.Value{}, false
}

// syncRule reports whether readings in a rule's scope are evaluated by
// the caller of Feed before it returns: a device's own report (an SOS)
// raises its alarm from that one message, so the alarm must be queued
// before the message is acknowledged to the device.
func syncRule(r *config.Rule) bool { return r.Kind == config.RuleEvent }
