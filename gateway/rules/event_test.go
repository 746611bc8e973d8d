package rules

import (
	"context"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
)

const eventHeader = `gateway:
  id: gw-1
  county: "320583"
  township: "320583104"
uplink:
  brokers: ["tcp://127.0.0.1:1883"]
field_broker:
  listen: "127.0.0.1:1884"
devices:
  - {id: door-1, driver: pulse, pin: DI1, input: door, interval: 1m}
  - {id: zfy-001, kind: recorder, driver: recorder, username: zfy-001, password_file: /etc/townlink/zfy-001.pw}
  - {id: hall-1, kind: kiosk, driver: kiosk, username: hall-1, password_file: /etc/townlink/hall-1.pw, wait_alarm: 30m}
`

func newEventFixture(t *testing.T, rules string) *fixture {
	return newFixtureAt(t, eventHeader+rules, 9)
}

func (f *fixture) event(dev string, vals map[string]drivers.Value) {
	f.e.Observe(context.Background(), []drivers.Reading{{Device: dev, Class: drivers.Event, Time: f.clk.t, Values: vals}})
}

// The default rules: an SOS raises and its end clears, the raised record
// carrying the report's position; a press while raised is not a second
// alarm, not even after a restart; other recorder events do nothing.
func TestDefaultSOS(t *testing.T) {
	f := newEventFixture(t, "")
	sos := func(active bool) map[string]drivers.Value {
		return map[string]drivers.Value{"event": drivers.Text("sos"), "active": drivers.Bool(active), "lat": drivers.Dec(31298765, -6), "priority": drivers.Int(1)}
	}
	f.event("zfy-001", map[string]drivers.Value{"event": drivers.Text("record_start")})
	f.want()
	f.event("zfy-001", sos(true))
	f.want("raised sos zfy-001")
	r := f.out.rs[0]
	if r.Values["lat"].String() != "31.298765" || r.Values["priority"].String() != "1" || r.Values["severity"].String() != "1" {
		t.Errorf("raised record %v", r.Values)
	}
	if _, ok := r.Values["active"]; ok {
		t.Errorf("the report's own state rides on the alarm record: %v", r.Values)
	}
	f.restart()
	f.clk.add(time.Minute)
	f.event("zfy-001", sos(true))
	f.event("zfy-001", map[string]drivers.Value{"event": drivers.Text("sos")}) // no active: a press
	f.e.Tick(context.Background())
	f.want("raised sos zfy-001")
	f.clk.add(24 * time.Hour) // an SOS is never cleared by the clock
	f.e.Tick(context.Background())
	f.want("raised sos zfy-001")
	f.event("zfy-001", sos(false))
	f.want("raised sos zfy-001", "cleared sos zfy-001")
	f.event("zfy-001", sos(false))
	f.want("raised sos zfy-001", "cleared sos zfy-001")
}

// A door contact's state, from its events and its periodic telemetry
// alike; a kiosk's long waits make one alarm for the kiosk.
func TestDefaultTamperAndKioskWait(t *testing.T) {
	f := newEventFixture(t, "")
	f.read("door-1", map[string]drivers.Value{"state": drivers.Bool(false)})
	f.event("door-1", map[string]drivers.Value{"event": drivers.Text("door_open"), "state": drivers.Bool(true)})
	f.read("door-1", map[string]drivers.Value{"state": drivers.Bool(true)})
	f.want("raised tamper door-1")
	f.restart()
	f.read("door-1", map[string]drivers.Value{"state": drivers.Bool(false)}) // closed while the gateway was down
	f.want("raised tamper door-1", "cleared tamper door-1")

	wait := func(active bool, ticket string) map[string]drivers.Value {
		v := map[string]drivers.Value{"event": drivers.Text("long_wait"), "active": drivers.Bool(active)}
		if ticket != "" {
			v["ticket"] = drivers.Text(ticket)
		}
		return v
	}
	f.event("hall-1", wait(false, "")) // the kiosk's first word after a start
	f.event("hall-1", wait(true, "A001"))
	f.event("hall-1", wait(true, "A002"))
	f.event("hall-1", map[string]drivers.Value{"event": drivers.Text("ticket_called"), "ticket": drivers.Text("A001")})
	f.event("hall-1", wait(false, ""))
	f.want("raised tamper door-1", "cleared tamper door-1", "raised kiosk-wait hall-1", "cleared kiosk-wait hall-1")
	if tk := f.out.rs[2].Values["ticket"].String(); tk != "A001" {
		t.Errorf("the raised record names ticket %q", tk)
	}
}

// clear_after ends an alarm no raising report renewed, also across a
// restart; a disabled default rule raises nothing.
func TestEventClearAfterAndDisabled(t *testing.T) {
	f := newEventFixture(t, `rules:
  - {id: sos, enabled: false}
  - {id: officer-down, kind: event, severity: 1, message: "{device}: officer down", scope: {device: zfy-001}, on: [fall], clear_after: 10m}
`)
	f.event("zfy-001", map[string]drivers.Value{"event": drivers.Text("sos"), "active": drivers.Bool(true)})
	f.event("zfy-001", map[string]drivers.Value{"event": drivers.Text("fall")})
	f.clk.add(9 * time.Minute)
	f.event("zfy-001", map[string]drivers.Value{"event": drivers.Text("fall")})
	f.clk.add(9 * time.Minute)
	f.e.Tick(context.Background())
	f.want("raised officer-down zfy-001")
	f.restart() // renewals are forgotten: clear_after counts from the start
	f.clk.add(9 * time.Minute)
	f.e.Tick(context.Background())
	f.want("raised officer-down zfy-001")
	f.clk.add(time.Minute)
	f.e.Tick(context.Background())
	f.want("raised officer-down zfy-001", "cleared officer-down zfy-001")
}

// Readings of a device with an event rule are evaluated by Feed's caller:
// the alarm is queued when Feed returns, with no Run.
func TestFeedEvaluatesEventRulesAtOnce(t *testing.T) {
	f := newEventFixture(t, "")
	f.e.Feed(context.Background(), []drivers.Reading{{Device: "zfy-001", Class: drivers.Event, Time: f.clk.t,
		Values: map[string]drivers.Value{"event": drivers.Text("sos"), "active": drivers.Bool(true)}}})
	f.want("raised sos zfy-001")
}

// A recorder's device alarms are one default rule per code: two codes
// active at once are two alarms, each cleared by its own active: false.
func TestDefaultRecorderDeviceAlarms(t *testing.T) {
	f := newEventFixture(t, "")
	alarm := func(code string, active bool) map[string]drivers.Value {
		return map[string]drivers.Value{"event": drivers.Text("device_alarm"), "code": drivers.Text(code), "active": drivers.Bool(active)}
	}
	f.event("zfy-001", alarm("low_battery", true))
	f.event("zfy-001", alarm("tamper", true))
	f.event("zfy-001", alarm("low_battery", false))
	f.event("zfy-001", alarm("low_battery", false))
	f.want("raised recorder-low-battery zfy-001", "raised recorder-tamper zfy-001", "cleared recorder-low-battery zfy-001")
	if act := f.e.Active(); len(act) != 1 || act[0].Rule != "recorder-tamper" || act[0].Severity != 2 {
		t.Errorf("active %+v", act)
	}
}
