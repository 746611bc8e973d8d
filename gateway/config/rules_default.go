package config

import (
	"strings"
	"time"

	"github.com/townlink/townlink/drivers/kiosk"
	"github.com/townlink/townlink/drivers/recorder"
	"github.com/townlink/townlink/gateway/fieldin"
)

// recorderAlarm is the severity and text of a recorder's device alarm.
func recorderAlarm(code string) (int, string) {
	switch code {
	case "fall":
		return 1, "the officer fell (fall detected)"
	case "tamper":
		return 2, "recorder tampered with"
	case "overheat":
		return 3, "recorder overheating"
	case "video_loss":
		return 3, "recorder lost its video"
	case "storage_full":
		return 4, "recorder storage full"
	}
	return 4, "recorder " + strings.ReplaceAll(code, "_", " ") // low_battery
}

// Ids of the default rules (and the prefix of a recorder's device
// alarms: recorder-low-battery, recorder-tamper, …).
const (
	RuleRecorderPrefix = "recorder-"
	RuleSOS            = "sos"
	RuleTamper         = "tamper"
	RuleFlood          = "flood"
	RuleKioskWait      = "kiosk-wait"
	RuleFieldRejects   = "field-rejects"
)

// FieldRejectsClearAfter is how long a field device must send nothing
// malformed before its field-rejects alarm clears (longer than the
// interval of its message_rejected events, gateway/fieldin's
// DefaultAlarmEvery: a test holds the two together).
const FieldRejectsClearAfter = time.Hour

// DefaultRules are the alarms every gateway raises without a word of
// config, as rules of the engine like any other: a recorder's SOS
// (cleared by its active: false) and its device alarms (one rule per
// code, e.g. recorder-tamper; cleared by their active: false), a door
// or cover contact opened and a flood sensor wet (cleared when the
// input returns), a service-hall
// ticket waiting longer than the kiosk's wait_alarm (cleared when no
// ticket is over it), a field device sending messages that do not decode
// (cleared after an hour without). Each is made only when a device it watches is
// configured. A rule of the same id in rules: replaces it; one written
// with only id: and enabled: false switches it off.
func DefaultRules(c *Config) []Rule {
	var recorders bool
	var doors, floods, kiosks, field []string
	for i := range c.Devices {
		dv := &c.Devices[i]
		if dv.Driver == DriverRecorder || dv.Driver == DriverKiosk {
			field = append(field, dv.ID)
		}
		switch {
		case dv.Kind == KindRecorder:
			recorders = true
		case dv.Driver == DriverPulse && dv.Input == InputDoor:
			doors = append(doors, dv.ID)
		case dv.Driver == DriverPulse && dv.Input == InputFlood:
			floods = append(floods, dv.ID)
		case dv.Kind == KindKiosk && dv.WaitAlarm > 0:
			kiosks = append(kiosks, dv.ID)
		}
	}
	rule := func(id string, sev int, msg string, s Scope, on []string, state string) Rule {
		return Rule{ID: id, Kind: RuleEvent, Severity: sev, Message: msg, Scope: s, On: on, State: state,
			Raises: DefaultRuleRaises, RaisesPer: DefaultRuleRaisesPer, Default: true}
	}
	var out []Rule
	if recorders {
		out = append(out, rule(RuleSOS, 1, "{device}: SOS from the enforcement officer", Scope{Kind: KindRecorder}, []string{recorder.EventSOS}, recorder.PointActive))
		for _, code := range recorder.DeviceAlarmCodes() {
			sev, text := recorderAlarm(code)
			r := rule(RuleRecorderPrefix+strings.ReplaceAll(code, "_", "-"), sev, "{device}: "+text,
				Scope{Kind: KindRecorder}, []string{recorder.EventDeviceAlarm}, recorder.PointActive)
			r.Where = map[string]string{"code": code}
			out = append(out, r)
		}
	}
	if len(doors) > 0 {
		out = append(out, rule(RuleTamper, 2, "{device}: door or cover opened", Scope{Devices: doors}, nil, "state"))
	}
	if len(floods) > 0 {
		out = append(out, rule(RuleFlood, 1, "{device}: water detected", Scope{Devices: floods}, nil, "state"))
	}
	if len(field) > 0 {
		r := rule(RuleFieldRejects, 3, "{device}: messages refused as malformed (kept raw as rejected records)", Scope{Devices: field}, []string{fieldin.EventRejected}, "")
		r.ClearAfter = FieldRejectsClearAfter
		out = append(out, r)
	}
	if len(kiosks) > 0 {
		out = append(out, rule(RuleKioskWait, 3, "{device}: a ticket has waited longer than wait_alarm", Scope{Devices: kiosks}, []string{kiosk.EventLongWait}, kiosk.PointActive))
	}
	return out
}
