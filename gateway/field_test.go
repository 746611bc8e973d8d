package gateway_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/fxamacker/cbor/v2"

	"github.com/townlink/townlink/firmware-sim/kiosksim"
	"github.com/townlink/townlink/firmware-sim/recordersim"
	"github.com/townlink/townlink/gateway"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
	"github.com/townlink/townlink/uplink/wire"
)

// fieldConfig writes a gateway config with a field broker on addr, a
// recorder and a kiosk with their password files.
func fieldConfig(t *testing.T, dir, broker, addr string) string {
	t.Helper()
	for _, f := range []string{"zfy-001.pw", "hall-kiosk-1.pw"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("pw-"+f+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := writeConfig(t, dir, broker, `
- {name: RS485-1, port: /dev/null-unused, baud: 9600}`, `
- {id: zfy-001, kind: recorder, driver: recorder, username: zfy-001, password_file: "`+filepath.Join(dir, "zfy-001.pw")+`", grid: "320583104001-02"}
- {id: hall-kiosk-1, kind: kiosk, driver: kiosk, username: hall-kiosk-1, password_file: "`+filepath.Join(dir, "hall-kiosk-1.pw")+`", wait_alarm: 30m}`)
	b, _ := os.ReadFile(path)
	s := strings.Replace(string(b), "lines:\n  - {name: RS485-1, port: /dev/null-unused, baud: 9600}\n", "field_broker:\n  listen: \""+addr+"\"\n", 1)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Recorders and kiosks publish to the gateway's field broker with their
// own credentials; evidence arrives at the county as a verified hash
// chain, kiosk events and derived metrics arrive, strangers are refused.
func TestRecordersAndKiosksThroughTheFieldBroker(t *testing.T) {
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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() { cancel(); <-done }()
	plat.waitFor("the field broker", 10*time.Second, func() bool { return g.FieldAddr() != "" })
	field := "tcp://" + g.FieldAddr()

	// A stranger and a wrong password are refused at CONNECT.
	for _, cred := range [][2]string{{"nobody", "x"}, {"zfy-001", "wrong"}} {
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(field).SetClientID("x-" + cred[0]).SetUsername(cred[0]).SetPassword(cred[1]))
		tok := c.Connect()
		tok.WaitTimeout(5 * time.Second)
		if tok.Error() == nil {
			c.Disconnect(0)
			t.Errorf("%s/%s was let in", cred[0], cred[1])
		}
	}

	recJ, kioskJ := &recordersim.Journal{}, &kiosksim.Journal{}
	sctx, scancel := context.WithTimeout(ctx, 60*time.Second)
	defer scancel()
	errc := make(chan error, 2)
	go func() {
		errc <- recordersim.Run(sctx, recordersim.Options{Broker: field, ID: "zfy-001", Username: "zfy-001", Password: "pw-zfy-001.pw",
			Speed: 600, Seed: 7, Duration: 40 * time.Minute, RecordEvery: 2 * time.Minute, SOSEvery: 10 * time.Minute, CBORShare: 0.3, Journal: recJ})
	}()
	go func() {
		errc <- kiosksim.Run(sctx, kiosksim.Options{Broker: field, ID: "hall-kiosk-1", Username: "hall-kiosk-1", Password: "pw-hall-kiosk-1.pw",
			Speed: 600, Seed: 7, Duration: 40 * time.Minute, Journal: kioskJ})
	}()
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatalf("simulator: %v", err)
		}
	}
	var files []string
	for _, e := range recJ.Entries() {
		if e.File != nil {
			files = append(files, e.File.SHA256)
		}
	}
	if len(files) == 0 {
		t.Fatal("the recorder simulator made no evidence files")
	}
	plat.waitFor("every evidence file at the county", 30*time.Second, func() bool {
		plat.mu.Lock()
		defer plat.mu.Unlock()
		seen := map[string]bool{}
		for _, r := range plat.recs[wire.StreamEvidence] {
			seen[r.Vals["sha256"].String()] = true
		}
		for _, f := range files {
			if !seen[f] {
				return false
			}
		}
		return true
	})
	plat.waitFor("kiosk events", 30*time.Second, func() bool {
		plat.mu.Lock()
		defer plat.mu.Unlock()
		n := 0
		for _, r := range plat.recs[wire.StreamEvents] {
			if r.Dev == "hall-kiosk-1" {
				n++
			}
		}
		return n >= len(kioskJ.Entries())/2
	})
	rep := plat.settledReport(20 * time.Second)
	ev, ok := rep.Stream("gw-test-01", wire.StreamEvidence)
	if !ok || !ev.ChainOK || len(ev.Missing) > 0 {
		t.Errorf("evidence stream: %+v", ev)
	}
	if !rep.OK() {
		t.Errorf("audit:\n%s", rep)
	}
	plat.mu.Lock()
	defer plat.mu.Unlock()
	var alarms, sos int
	for _, r := range plat.recs[wire.StreamAlarms] {
		if r.Dev == "zfy-001" && r.Vals["rule"].String() == config.RuleSOS && r.Vals["event"].String() == "raised" {
			alarms++
		}
	}
	for _, r := range plat.recs[wire.StreamEvents] {
		if r.Dev == "zfy-001" && r.Vals["event"].String() == "sos" {
			sos++
		}
	}
	if alarms == 0 || sos == 0 {
		t.Errorf("the recorder's SOS: %d reports on events, %d alarms raised by the default rule sos", sos, alarms)
	}
	for _, r := range plat.recs[wire.StreamEvidence] {
		if r.Grid != "320583104001-02" || r.Kind != "recorder" {
			t.Errorf("evidence record %d: grid %q kind %q", r.Seq, r.Grid, r.Kind)
			break
		}
	}
}

// kill -9 during a burst of QoS 1 messages from the simulators: every
// message the gateway acknowledged reaches the county broker, and the
// evidence chain survives the restart.
func TestKill9DuringFieldBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: kill -9 of a gateway child process during a burst; make test runs it")
	}
	plat, path, addr, child := startFieldChild(t)

	recJ := &recordersim.Journal{}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		// A fast shift: many status, position and evidence messages a second.
		errc <- recordersim.Run(ctx, recordersim.Options{Broker: "tcp://" + addr, ID: "zfy-001", Username: "zfy-001", Password: "pw-zfy-001.pw",
			Speed: 3000, Seed: 11, Duration: 3 * time.Hour, RecordEvery: time.Minute, PositionEvery: 5 * time.Second, Journal: recJ})
	}()
	for round := 0; round < 2; round++ {
		plat.waitFor("some acknowledged messages", 30*time.Second, func() bool { return len(recJ.Entries()) > 100*(round+1) })
		kill9(t, child)
		time.Sleep(300 * time.Millisecond)
		child = startChild(t, path)
	}
	if err := <-errc; err != nil {
		t.Fatalf("recorder simulator: %v", err)
	}
	entries := recJ.Entries()
	var files []string
	for _, e := range entries {
		if e.File != nil {
			files = append(files, e.File.SHA256)
		}
	}
	t.Logf("%d messages acknowledged by the gateway, %d evidence files", len(entries), len(files))
	plat.waitFor("every acknowledged evidence file at the county", 60*time.Second, func() bool {
		plat.mu.Lock()
		defer plat.mu.Unlock()
		seen := map[string]bool{}
		for _, r := range plat.recs[wire.StreamEvidence] {
			seen[r.Vals["sha256"].String()] = true
		}
		for _, f := range files {
			if !seen[f] {
				return false
			}
		}
		return true
	})
	plat.waitFor("every acknowledged message at the county", 60*time.Second, func() bool {
		plat.mu.Lock()
		defer plat.mu.Unlock()
		seen := map[string]bool{}
		for _, s := range plat.recs {
			for _, r := range s {
				if r.Dev == "zfy-001" {
					seen[r.Vals["msg_id"].String()] = true
				}
			}
		}
		missing := 0
		for _, e := range entries {
			if !seen[msgID(e.Payload)] {
				missing++
			}
		}
		return missing == 0
	})
	rep := plat.settledReport(20 * time.Second)
	if !rep.OK() {
		t.Errorf("audit after two kill -9:\n%s", rep)
	}
}

// startFieldChild starts a gateway child process with the field config
// (a recorder and a kiosk) on a free field-broker address, uplinked to a
// real mosquitto that a platform listens on.
func startFieldChild(t *testing.T) (plat *platform, path, addr string, child *exec.Cmd) {
	t.Helper()
	broker := mosquittotest.Start(t)
	plat = newPlatform(t, broker.URL)
	addr = freeAddr(t)
	path = fieldConfig(t, t.TempDir(), broker.URL, addr)
	return plat, path, addr, startChild(t, path)
}

// msgID pulls "msg_id" out of a simulator's JSON or CBOR payload.
func msgID(p []byte) string {
	var m map[string]any
	if len(p) > 0 && p[0] == '{' {
		if json.Unmarshal(p, &m) != nil {
			return ""
		}
	} else if cbor.Unmarshal(p, &m) != nil {
		return ""
	}
	s, _ := m["msg_id"].(string)
	return s
}
