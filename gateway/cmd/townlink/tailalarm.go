package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/townlink/townlink/gateway/rules"
	"github.com/townlink/townlink/uplink/wire"
)

// formatAlarm prints a rules alarm record (raised, cleared, suppressed)
// so that it stands out in tail's output; false for other records.
func formatAlarm(gw string, r *wire.Record) (string, bool) {
	text := func(k string) string { s, _ := r.Vals[k].AsText(); return s }
	ev := text("event")
	var head string
	switch ev {
	case "raised":
		head = "!!! ALARM RAISED "
	case "cleared":
		head = "=== ALARM CLEARED"
	case "suppressed":
		head = "--- ALARM SUPPRESSED"
	default:
		return "", false
	}
	sev, _ := r.Vals["severity"].AsInt()
	when := time.UnixMilli(r.TS).UTC().Format("15:04:05")
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s [sev%d] %s %s %s #%d %s: %s", head, sev, gw, text("rule"), text("scope"), r.Seq, when, text("message"))
	if id := text("alarm_id"); id != "" {
		fmt.Fprintf(&sb, " (id %s", id)
		if since, ok := r.Vals["since"].AsInt(); ok {
			fmt.Fprintf(&sb, ", since %s", time.UnixMilli(since).UTC().Format("15:04:05"))
		}
		sb.WriteString(")")
	}
	for _, k := range []string{"point", "value", "limit", "suppressed"} {
		if v, ok := r.Vals[k]; ok {
			fmt.Fprintf(&sb, " %s=%s", k, formatValue(v))
		}
	}
	// The rest: what the device's report carried (an SOS's position).
	var rest []string
	for k := range r.Vals {
		if !rules.IsAlarmPoint(k) {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		fmt.Fprintf(&sb, " %s=%s", k, formatValue(r.Vals[k]))
	}
	return sb.String(), true
}

// formatAlarms prints a status's active alarms, one per line.
func formatAlarms(gw string, alarms map[string]string) string {
	ids := make([]string, 0, len(alarms))
	for id := range alarms {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var sb strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&sb, "status    %s active alarm %s: %s\n", gw, id, alarms[id])
	}
	return sb.String()
}
