package gateway_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/townlink/townlink/gateway"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/fieldin"
	"github.com/townlink/townlink/gateway/identity"
	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
	"github.com/townlink/townlink/uplink/wire"
)

// Every message the field broker acknowledges is at the county as a
// record of that device — decoded, or kept raw as a rejected record on the
// stream it was meant for — including every kind that round 1 PUBACKed and
// dropped: schema quirks, a device clock 2 days ahead of the gateway, a
// payload between the old 64 KiB decoder limit and max_payload, an
// unknown event, garbage. A payload over max_payload is never
// acknowledged. The evidence chain verifies with the gateway's key.
func TestEveryAcknowledgedFieldMessageReachesTheCounty(t *testing.T) {
	broker := mosquittotest.Start(t)
	plat := newPlatform(t, broker.URL)
	dir := t.TempDir()
	path := fieldConfig(t, dir, broker.URL, "127.0.0.1:0")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	key, err := identity.Load(identity.Dir(cfg.Gateway.DataDir))
	if err != nil {
		t.Fatal(err)
	}
	plat.trust(cfg.Gateway.ID, key.Verifier())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() { cancel(); <-done }()
	plat.waitFor("the field broker", 10*time.Second, func() bool { return g.FieldAddr() != "" })

	golden := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "drivers", "recorder", "testdata", "valid", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ahead := time.Now().Add(48 * time.Hour).UnixMilli()
	msgs := []struct {
		name, event string
		payload     []byte
		stream      string // where the county must find it
		kind        string // recorder (decoded) or rejected
	}{
		{"sha256 in upper case", "evidence.file", golden("evidence_sha_upper.json"), wire.StreamEvidence, wire.KindRecorder},
		{"officer id with a hyphen", "evidence.file", golden("evidence_officer_hyphen.json"), wire.StreamEvidence, wire.KindRecorder},
		{"device clock 2 days ahead", "evidence.file", []byte(fmt.Sprintf(
			`{"ts":%d,"payload":{"file_id":"F-AHEAD","size_bytes":10,"start_at":%d,"end_at":%d,"officer_id":"SZ-100234","sha256":"%s"}}`,
			ahead, ahead-60_000, ahead-1_000, strings.Repeat("ab", 32))), wire.StreamEvidence, wire.KindRecorder},
		{"100 KiB, between the old limits", "evidence.file", golden("evidence_100k.json"), wire.StreamEvidence, wire.KindRecorder},
		{"garbage on evidence", "evidence.file", []byte("\x00\xffnot a message"), wire.StreamEvidence, wire.KindRejected},
		{"an unknown event", "firmware.update", []byte(`{"version":"2.1"}`), wire.StreamEvents, wire.KindRejected},
		{"a status that fails its schema", "device.status", []byte(`{"battery_pct":"full"}`), wire.StreamTelemetry, wire.KindRejected},
	}
	if n := len(golden("evidence_100k.json")); n <= 64<<10 || n >= 256<<10 {
		t.Fatalf("the 100 KiB message is %d bytes", n)
	}
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + g.FieldAddr()).SetClientID("zfy-001").
		SetUsername("zfy-001").SetPassword("pw-zfy-001.pw").SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	for _, m := range msgs {
		tok := c.Publish("field/zfy-001/"+m.event, 1, false, m.payload)
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("%s: not acknowledged: %v", m.name, tok.Error())
		}
	}
	// Over max_payload: refused before any acknowledgement (3.1.1: the
	// connection is closed, the device keeps the message).
	tok := c.Publish("field/zfy-001/evidence.file", 1, false, make([]byte, 300<<10))
	if tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		t.Error("a payload over max_payload was acknowledged")
	}
	c.Disconnect(0)

	want := map[string]map[string]int{} // stream → kind → count
	for _, m := range msgs {
		if want[m.stream] == nil {
			want[m.stream] = map[string]int{}
		}
		want[m.stream][m.kind]++
	}
	want[wire.StreamEvents][wire.KindRecorder]++ // one message_rejected event for the three rejected (one per 10 min)
	count := func(stream string) map[string]int {
		got := map[string]int{}
		for _, r := range plat.records(stream, "zfy-001") {
			got[r.Kind]++
		}
		return got
	}
	plat.waitFor("every acknowledged message at the county", 30*time.Second, func() bool {
		for stream, kinds := range want {
			got := count(stream)
			for k, n := range kinds {
				if got[k] < n {
					return false
				}
			}
		}
		return true
	})
	for stream, kinds := range want {
		if got := count(stream); fmt.Sprint(got) != fmt.Sprint(kinds) {
			t.Errorf("%s: records of zfy-001 by kind %v, want %v", stream, got, kinds)
		}
	}
	var skewed bool
	for _, r := range plat.records(wire.StreamEvidence, "zfy-001") {
		if v, ok := r.Vals["file_id"]; ok && v.String() == "F-AHEAD" {
			off, _ := r.Vals[wire.PointClockOffset].AsInt()
			skewed = r.Q&wire.QClockSkew != 0 && off > 47*3600*1000 && r.TSrc == wire.TSrcDevice
		}
	}
	if !skewed {
		t.Error("the record from a device 2 days ahead is not flagged with its clock offset")
	}
	plat.waitFor("an alarm for the rejected messages", 10*time.Second, func() bool {
		for _, r := range plat.records(wire.StreamAlarms, "zfy-001") {
			if r.Vals["event"].String() == "raised" && r.Vals["rule"].String() == config.RuleFieldRejects {
				return true
			}
		}
		return false
	})
	rep := plat.settledReport(20 * time.Second)
	ev, _ := rep.Stream(cfg.Gateway.ID, wire.StreamEvidence)
	if !rep.OK() || !ev.ChainOK || !ev.SigChecked {
		t.Errorf("audit with the gateway's key:\n%s", rep)
	}
	if bad := plat.malformed(); len(bad) > 0 {
		t.Errorf("the county could not decode: %v", bad)
	}
}

// The field-rejects alarm clears after an hour without a malformed
// message; the ingest repeats its message_rejected event at most every
// DefaultAlarmEvery while they go on: the clear must wait longer than
// that, or a device that keeps sending garbage would flap.
func TestFieldRejectsOutlastsItsEvents(t *testing.T) {
	if config.FieldRejectsClearAfter <= 2*fieldin.DefaultAlarmEvery {
		t.Errorf("field-rejects clears after %v, the events come every %v", config.FieldRejectsClearAfter, fieldin.DefaultAlarmEvery)
	}
}
