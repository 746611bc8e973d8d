package gateway

import (
	"context"
	"fmt"
	"io"

	"github.com/townlink/townlink/gateway/rules"
)

// alarmTable is the store table of the rules engine's alarm state.
const alarmTable = "alarm-state"

// buildRules wires the early warning: the engine sees every reading the
// pipeline queued (pipeline.Observe), queues its alarms through the same
// pipeline, keeps its state in the store, and republishes the status
// when alarms change. It needs g.pipe and g.db; g.status may come later.
func (g *Gateway) buildRules() error {
	kv, err := g.db.KV(alarmTable)
	if err != nil {
		return fmt.Errorf("%w: table %s: %w", ErrStart, alarmTable, err)
	}
	e, err := rules.New(rules.Options{
		Gateway:  g.cfg.Gateway.ID,
		Rules:    g.cfg.Rules,
		Devices:  g.cfg.Devices,
		Location: g.cfg.Gateway.Location(),
		Emit:     g.pipe.Emit,
		Store:    kv,
		Logger:   g.log.With("part", "rules"),
		OnChange: func() {
			if g.status != nil {
				g.status.kick()
			}
		},
	})
	if err != nil {
		return fmt.Errorf("%w: rules: %w", ErrStart, err)
	}
	g.rules = e
	g.pipe.Observe = e.Feed
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

// writeRuleMetrics is the rules' part of /metrics.
func (g *Gateway) writeRuleMetrics(w io.Writer) {
	if g.rules == nil {
		return
	}
	s := g.rules.Stats()
	fmt.Fprintf(w, "# HELP townlink_rules_observed_total Readings evaluated by the rules.\n# TYPE townlink_rules_observed_total counter\ntownlink_rules_observed_total %d\n", s.Observed)
	fmt.Fprintln(w, "# HELP townlink_alarms_total Alarm records queued, by event.\n# TYPE townlink_alarms_total counter")
	fmt.Fprintf(w, "townlink_alarms_total{event=\"raised\"} %d\ntownlink_alarms_total{event=\"cleared\"} %d\ntownlink_alarms_total{event=\"suppressed\"} %d\n", s.Raised, s.Cleared, s.Suppressed)
	fmt.Fprintln(w, "# HELP townlink_alarms_active Active alarms, by severity (1 most severe).\n# TYPE townlink_alarms_active gauge")
	for _, k := range []int{1, 2, 3, 4} {
		fmt.Fprintf(w, "townlink_alarms_active{severity=\"%d\"} %d\n", k, s.Active[k])
	}
}
