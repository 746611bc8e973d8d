package main

import (
	"strings"
	"testing"

	"github.com/townlink/townlink/uplink/wire"
)

// Alarm records stand out; other alarm-stream records (the gateway's
// message_rejected) print as records.
func TestFormatAlarm(t *testing.T) {
	r := wire.Record{Seq: 7, Dev: "w1", Kind: "water", TS: 1_765_000_000_000, Vals: map[string]wire.Value{
		"event": wire.Text("raised"), "rule": wire.Text("night-leak"), "severity": wire.Int(2), "scope": wire.Text("device:w1"),
		"message": wire.Text("w1 leaks"), "alarm_id": wire.Text("night-leak:w1:1"), "since": wire.Int(1_765_000_000_000),
		"value": wire.Float(0.8), "limit": wire.Float(0.05),
	}}
	s, ok := formatAlarm("gw-1", &r)
	for _, want := range []string{"!!! ALARM RAISED", "[sev2]", "night-leak", "device:w1", "w1 leaks", "id night-leak:w1:1", "value=0.8", "limit=0.05"} {
		if !ok || !strings.Contains(s, want) {
			t.Errorf("%q lacks %q", s, want)
		}
	}
	r.Vals["lat"] = wire.Dec(31298765, -6) // a report's own values ride on the raised record
	if s, _ := formatAlarm("gw-1", &r); !strings.HasSuffix(s, " lat=31.298765") {
		t.Errorf("the report's values: %q", s)
	}
	r.Vals["event"] = wire.Text("cleared")
	if s, ok := formatAlarm("gw-1", &r); !ok || !strings.HasPrefix(s, "=== ALARM CLEARED") {
		t.Errorf("cleared: %q", s)
	}
	r.Vals["event"] = wire.Text("message_rejected")
	if _, ok := formatAlarm("gw-1", &r); ok {
		t.Errorf("a message_rejected printed as a rules alarm")
	}
	if s := formatAlarms("gw-1", map[string]string{"b": "two", "a": "one"}); s != "status    gw-1 active alarm a: one\nstatus    gw-1 active alarm b: two\n" {
		t.Errorf("status alarms: %q", s)
	}
}
