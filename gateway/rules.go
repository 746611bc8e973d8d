package gateway

import (
	"context"
	"fmt"
	"strconv"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/localapi"
	"github.com/townlink/townlink/gateway/metrics"
	"github.com/townlink/townlink/gateway/rules"
)

// alarmTable is the store table of the rules engine's alarm state.
const alarmTable = "alarm-state"

// buildRules wires the early warning: the engine sees every reading the
// pipeline queued (pipeline.Observe, beside the local page's recent
// values), queues its alarms through the same pipeline, keeps its state in
// the store, and has the status republished when an alarm changes.
func (g *Gateway) buildRules() error {
	kv, err := g.db.KV(alarmTable)
	if err != nil {
		return fmt.Errorf("%w: table %s: %w", ErrStart, alarmTable, err)
	}
	e, err := rules.New(rules.Options{
		Gateway:  g.cfg.Gateway.ID,
		Rules:    g.cfg.Rules,
		Devices:  g.cfg.Devices,
		Location: g.cfg.Gateway.Location,
		Emit:     g.pipe.Emit,
		Store:    kv,
		Logger:   g.log.With("part", "rules"),
		OnChange: func() {
			if g.status != nil {
				g.status.Kick()
			}
		},
	})
	if err != nil {
		return fmt.Errorf("%w: rules: %w", ErrStart, err)
	}
	g.rules = e
	recentObs := g.pipe.Observe
	g.pipe.Observe = func(ctx context.Context, rs []drivers.Reading) {
		if recentObs != nil {
			recentObs(ctx, rs)
		}
		e.Feed(ctx, rs)
	}
	g.alarms = g.localAlarms
	return nil
}

// runRules ticks the engine (silences, hold times, windows) until ctx ends.
func (g *Gateway) runRules(ctx context.Context) error { return g.rules.Run(ctx) }

// activeAlarms is the status's alarms: alarm id → short text.
func (g *Gateway) activeAlarms() map[string]string {
	if g.rules == nil {
		return nil
	}
	act := g.rules.Active()
	if len(act) == 0 {
		return nil
	}
	m := make(map[string]string, len(act))
	for i := range act {
		m[act[i].ID] = act[i].Short()
	}
	return m
}

// localAlarms are the active alarms for townlink status and the page.
func (g *Gateway) localAlarms() []localapi.Alarm {
	act := g.rules.Active()
	out := make([]localapi.Alarm, 0, len(act))
	for _, a := range act {
		out = append(out, localapi.Alarm{Device: a.Target, Rule: a.Rule, Severity: strconv.Itoa(a.Severity), Message: a.Message, Since: a.Since})
	}
	return out
}

// alarmCounts are the rules' figures for the metrics.
func (g *Gateway) alarmCounts() metrics.AlarmCounts {
	s := g.rules.Stats()
	return metrics.AlarmCounts{Observed: s.Observed, Raised: s.Raised, Cleared: s.Cleared, Suppressed: s.Suppressed, ExprErrors: s.ExprErrors, Active: s.Active}
}
