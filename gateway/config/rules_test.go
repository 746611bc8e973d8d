package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestRulesDecoded: the sample's rules come out with their values and
// defaults.
func TestRulesDecoded(t *testing.T) {
	c := mustLoad(t, "testdata/good/rules.yaml")
	if len(c.Rules) != 7 {
		t.Fatalf("%d rules, want 7", len(c.Rules))
	}
	byID := map[string]*Rule{}
	for i := range c.Rules {
		byID[c.Rules[i].ID] = &c.Rules[i]
	}
	leak := byID["night-leak"]
	if leak.Kind != RuleWindow || !leak.Rate || !leak.Counter || leak.Per != time.Hour || leak.From != 120 || leak.To != 240 ||
		leak.Above == nil || *leak.Above != 0.05 || leak.MaxRate == nil || *leak.MaxRate != 50 || leak.Hold != 10*time.Minute || leak.ClearHold != 10*time.Minute {
		t.Errorf("night-leak = %+v", leak)
	}
	if leak.Scope.Kind != KindWater || leak.Scope.String() != "kind:water" {
		t.Errorf("night-leak scope = %+v", leak.Scope)
	}
	pl := byID["phase-loss"]
	if len(pl.Points) != 3 || pl.Below == nil || *pl.Below != 150 || pl.Hysteresis != 20 || pl.Raises != DefaultRuleRaises || pl.RaisesPer != DefaultRuleRaisesPer {
		t.Errorf("phase-loss = %+v", pl)
	}
	out := byID["line-outage"]
	if out.Kind != RuleGroup || out.Intervals != 3 || len(out.Inhibits) != 2 || out.Scope.String() != "kind:power,line:RS485-A" {
		t.Errorf("line-outage = %+v", out)
	}
	if s := byID["meter-silent"]; s.Intervals != 5 {
		t.Errorf("meter-silent intervals = %d", s.Intervals)
	}
	cod := byID["cod-limit"]
	if cod.ClearHold != 5*time.Minute || cod.Raises != 3 || cod.RaisesPer != time.Hour {
		t.Errorf("cod-limit = %+v", cod)
	}
	if r := byID["temp-rise"]; !r.Rate || r.Counter || r.Per != time.Minute {
		t.Errorf("temp-rise = %+v", r)
	}
	if r := byID["cod-jump"]; r.Program == nil {
		t.Errorf("cod-jump not compiled")
	}
	if loc := c.Gateway.Location; loc.String() != "Asia/Shanghai" {
		t.Errorf("location %v", loc)
	}
}

const rulesHeader = `gateway:
  id: gw-1
  county: "320583"
  township: "320583104"
uplink:
  brokers: ["tcp://127.0.0.1:1883"]
lines:
  - {name: RS485-A, port: /dev/ttyUSB0}
devices:
  - {id: e1, driver: dlt645, line: RS485-A, address: "202611300001", read: [voltage_a_v, voltage_b_v]}
  - {id: w1, driver: cjt188, line: RS485-A, address: "20261130000101"}
rules:
`

// FuzzRules: any rules section never panics; a problem is an *Error with
// a position inside the file; an accepted rule is complete.
func FuzzRules(f *testing.F) {
	for _, s := range []string{
		"  - {id: a, kind: threshold, severity: 1, message: m, scope: {device: e1}, point: voltage_a_v, below: 100}\n",
		"  - {id: a, kind: window, severity: 2, message: m, scope: {kind: water}, point: flow_m3, counter: true, above: 0.1, from: \"02:00\", to: \"04:00\"}\n",
		"  - {id: a, kind: expr, severity: 3, message: m, scope: {device: w1}, expr: \"flow_m3 > prev.flow_m3\"}\n",
		"  - {id: a, kind: expr, severity: 3, message: m, scope: {device: e1}, expr: \"prev[\\\"voltage_a_v\\\"] - prev.voltage_b_v > 2 ** -hour\"}\n",
		"  - {id: a, kind: expr, severity: 3, message: m, scope: {device: w1}, expr: \"prev.flow_m > 0 || prev?.flow_m3 > prev[device]\"}\n",
		"  - {id: a, kind: group, severity: 1, message: m, scope: {line: RS485-A}, intervals: 3, inhibits: [b]}\n  - {id: b, kind: stale, severity: 4, message: m, scope: {kind: power}}\n",
		"  - {id: a, kind: rate, severity: 1, message: \"{value}\", scope: {grid: x}, point: p, above: 1e3}\n",
		"  - expr: \"1..1000000 | map(# * #)\"\n",
		"  - {id: a, kind: event, severity: 1, message: m, scope: {device: w1}, on: [leak], state: battery_low, clear_after: 1h}\n",
		"  - {id: a, enabled: false}\n",
		"  - {id: a, kind: event, severity: 2, message: m, scope: {device: w1}, on: [x], where: {valve: open}}\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rules string) {
		data := rulesHeader + rules
		c, err := Parse("fuzz.yaml", []byte(data))
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %T is not Errors: %v", err, err)
			}
			// YAML breaks lines at \n, \r\n and a lone \r.
			lines := strings.Count(data, "\n") + strings.Count(strings.ReplaceAll(data, "\r\n", ""), "\r") + 1
			for _, e := range es {
				if e.Line > lines || e.Msg == "" {
					t.Fatalf("problem outside the file or without text: %v", e)
				}
			}
			return
		}
		for _, r := range c.Rules {
			if r.Disabled {
				continue
			}
			if r.Kind == RuleEvent && len(r.On) == 0 && r.State == "" {
				t.Fatalf("accepted an event rule that watches nothing: %+v", r)
			}
			if r.ID == "" || r.Kind == "" || r.Severity < 1 || r.Severity > 4 || r.Message == "" || r.Scope.String() == "" || r.Raises < 1 {
				t.Fatalf("accepted an incomplete rule %+v", r)
			}
			if r.Kind == RuleExpr && r.Program == nil {
				t.Fatalf("accepted an expression rule without a program: %+v", r)
			}
			if (r.Kind == RuleThreshold || r.Kind == RuleRate || r.Kind == RuleWindow) && (len(r.Points) == 0 || (r.Above == nil) == (r.Below == nil)) {
				t.Fatalf("accepted a condition without point or limit: %+v", r)
			}
		}
	})
}

const defaultsHeader = `gateway:
  id: gw-1
  county: "320583"
  township: "320583104"
uplink:
  brokers: ["tcp://127.0.0.1:1883"]
field_broker:
  listen: "127.0.0.1:1884"
devices:
  - {id: door-1, driver: pulse, pin: DI1, input: door}
  - {id: flood-1, driver: pulse, pin: DI2, input: flood}
  - {id: count-1, driver: pulse, pin: DI3}
  - {id: zfy-001, kind: recorder, driver: recorder, username: zfy-001, password_file: /etc/townlink/zfy-001.pw}
  - {id: hall-1, kind: kiosk, driver: kiosk, username: hall-1, password_file: /etc/townlink/hall-1.pw, wait_alarm: 30m}
  - {id: hall-2, kind: kiosk, driver: kiosk, username: hall-2, password_file: /etc/townlink/hall-2.pw}
`

// The SOS, tamper, flood and long-wait alarms are default rules, made for
// the devices they watch; a rule of the same id replaces one, enabled:
// false switches one off, and neither is written back by YAML().
func TestDefaultRules(t *testing.T) {
	c, err := Parse("d.yaml", []byte(defaultsHeader))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range c.Rules {
		if !r.Default || r.Kind != RuleEvent {
			t.Errorf("rule %s: default %v kind %s", r.ID, r.Default, r.Kind)
		}
		got[r.ID] = fmt.Sprintf("%s on=%v state=%s sev=%d", r.Scope, r.On, r.State, r.Severity)
		if code := strings.TrimPrefix(r.ID, RuleRecorderPrefix); code != r.ID && r.Where["code"] != strings.ReplaceAll(code, "-", "_") {
			t.Errorf("rule %s watches code %q", r.ID, r.Where["code"])
		}
	}
	want := map[string]string{
		RuleSOS:                 "kind:recorder on=[sos] state=active sev=1",
		"recorder-fall":         "kind:recorder on=[device_alarm] state=active sev=1",
		"recorder-tamper":       "kind:recorder on=[device_alarm] state=active sev=2",
		"recorder-overheat":     "kind:recorder on=[device_alarm] state=active sev=3",
		"recorder-video-loss":   "kind:recorder on=[device_alarm] state=active sev=3",
		"recorder-low-battery":  "kind:recorder on=[device_alarm] state=active sev=4",
		"recorder-storage-full": "kind:recorder on=[device_alarm] state=active sev=4",
		RuleTamper:              "device:door-1 on=[] state=state sev=2",
		RuleFlood:               "device:flood-1 on=[] state=state sev=1",
		RuleKioskWait:           "device:hall-1 on=[long_wait] state=active sev=3",
		RuleFieldRejects:        "device:zfy-001+hall-1+hall-2 on=[message_rejected] state= sev=3",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("default rules\n got %v\nwant %v", got, want)
	}

	c, err = Parse("d.yaml", []byte(defaultsHeader+`rules:
  - {id: sos, enabled: false}
  - {id: tamper, kind: event, severity: 1, message: "{device} opened", scope: {device: door-1}, state: state, clear_after: 10m}
`))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]*Rule{}
	for i := range c.Rules {
		ids[c.Rules[i].ID] = &c.Rules[i]
	}
	if r := ids[RuleSOS]; r == nil || !r.Disabled {
		t.Errorf("sos switched off: %+v", r)
	}
	if r := ids[RuleTamper]; r == nil || r.Default || r.Severity != 1 || r.ClearAfter != 10*time.Minute {
		t.Errorf("tamper replaced: %+v", r)
	}
	if len(c.Rules) != 11 { // sos (off), tamper (written), flood, kiosk-wait, field-rejects and 6 recorder-… (defaults)
		t.Errorf("%d rules", len(c.Rules))
	}
	y, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(y), "long_wait") || !strings.Contains(string(y), "enabled: false") {
		t.Errorf("YAML() writes the defaults or drops the switch:\n%s", y)
	}
	if _, err := Parse("again.yaml", y); err != nil {
		t.Errorf("YAML() does not parse again: %v", err)
	}
}

// A field message the gateway accepts may have to be kept raw as a
// rejected record, which must fit in one uplink message: max_payload stops
// at fieldin.MaxPayload (it went up to 256 MiB, and a message above ~48 MiB
// was acknowledged and then unreadable at the county).
func TestMaxPayloadFitsTheUplink(t *testing.T) {
	for _, tc := range []struct {
		size string
		ok   bool
	}{{"256KiB", true}, {"32MiB", true}, {"48MiB", false}, {"256MiB", false}} {
		yaml := strings.Replace(defaultsHeader, `listen: "127.0.0.1:1884"`, `listen: "127.0.0.1:1884"`+"\n  max_payload: "+tc.size, 1)
		c, err := Parse("d.yaml", []byte(yaml))
		switch {
		case tc.ok && (err != nil || c.FieldBroker.MaxPayload.String() != tc.size):
			t.Errorf("max_payload %s: %v", tc.size, err)
		case !tc.ok && (err == nil || !strings.Contains(err.Error(), "max_payload")):
			t.Errorf("max_payload %s accepted (err %v)", tc.size, err)
		}
	}
}
