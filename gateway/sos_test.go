package gateway_test

import (
	"fmt"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/uplink/wire"
)

// An SOS is raised as an alarm by the default rule sos before the field
// broker acknowledges the message that carried it: kill -9 of the gateway
// right after the PUBACK neither loses the alarm nor raises it twice,
// and the same holds for the SOS's end (active: false) and its clear.
func TestSOSAlarmIsQueuedBeforeItsAcknowledgement(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: kill -9 of a gateway child process; make test runs it")
	}
	plat, path, addr, child := startFieldChild(t)

	publish := func(active bool) {
		t.Helper()
		var c mqtt.Client
		plat.waitFor("the field broker", 20*time.Second, func() bool {
			c = mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("zfy-001").
				SetUsername("zfy-001").SetPassword("pw-zfy-001.pw").SetAutoReconnect(false).SetConnectRetry(false))
			tok := c.Connect()
			return tok.WaitTimeout(2*time.Second) && tok.Error() == nil
		})
		msg := fmt.Sprintf(`{"ts":%d,"payload":{"lat":31.298765,"lon":120.585432,"datum":"WGS84","active":%t,"priority":1}}`, time.Now().UnixMilli(), active)
		tok := c.Publish("field/zfy-001/alarm.sos", 1, false, msg)
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("SOS active=%t not acknowledged: %v", active, tok.Error())
		}
		// Acknowledged: the alarm is the gateway's promise now.
		kill9(t, child)
		c.Disconnect(0)
		child = startChild(t, path)
	}

	publish(true)
	plat.waitFor("the SOS raised at the county", 30*time.Second, func() bool { return len(plat.alarmRecs(config.RuleSOS, "raised")) > 0 })
	raised := plat.alarmRecs(config.RuleSOS, "raised")[0]
	if raised.Dev != "zfy-001" || raised.Vals["lat"].String() != "31.298765" || raised.Vals["severity"].String() != "1" {
		t.Errorf("the raised record: dev %s vals %v", raised.Dev, raised.Vals)
	}
	publish(true) // the officer presses again: the alarm is already active
	publish(false)
	plat.waitFor("the SOS cleared at the county", 30*time.Second, func() bool { return len(plat.alarmRecs(config.RuleSOS, "cleared")) > 0 })
	plat.waitFor("every SOS report on the events stream", 30*time.Second, func() bool {
		n := 0
		for _, r := range plat.records(wire.StreamEvents, "zfy-001") {
			if r.Vals["event"].String() == "sos" {
				n++
			}
		}
		return n >= 3
	})
	if r, c := len(plat.alarmRecs(config.RuleSOS, "raised")), len(plat.alarmRecs(config.RuleSOS, "cleared")); r != 1 || c != 1 {
		t.Errorf("%d raised and %d cleared records, want 1 and 1", r, c)
	}
	if rep := plat.settledReport(20 * time.Second); !rep.OK() {
		t.Errorf("audit:\n%s", rep)
	}
}
