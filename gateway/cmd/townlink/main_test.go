package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/gateway/mqttbroker"
	"github.com/townlink/townlink/hardware/serialsim"
	"github.com/townlink/townlink/uplink/mqttpub"
	"github.com/townlink/townlink/uplink/wire"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = Main(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

// demoConfig is examples/demo.yaml as scripts/demo.sh fills it in.
func demoConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../../examples/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "secrets"), 0o700)
	for _, d := range []string{"zfy-001", "hall-kiosk-1", "web"} {
		os.WriteFile(filepath.Join(dir, "secrets", d+".pw"), []byte("pw\n"), 0o600)
	}
	// check wants the serial ports to exist: PTYs stand in for them, as in the demo.
	os.MkdirAll(filepath.Join(dir, "dev"), 0o755)
	for _, l := range []string{"RS485-1", "RS485-2", "RS485-3"} {
		p, err := serialsim.OpenPTY()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		if err := os.Symlink(p.Path(), filepath.Join(dir, "dev", l)); err != nil {
			t.Fatal(err)
		}
	}
	s := strings.NewReplacer("@DEMO@", dir, "@BROKER@", "127.0.0.1:18830", "@FIELD@", "18831").Replace(string(b))
	path := filepath.Join(dir, "townlink.yaml")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckAcceptsTheDemoConfig(t *testing.T) {
	code, out, errOut := run(t, "check", demoConfig(t))
	if code != 0 || !strings.Contains(out, "ok: gateway gw-zhoushi-01") || !strings.Contains(out, "chem-plant-3-outlet") {
		t.Fatalf("check = %d\n%s%s", code, out, errOut)
	}
}

func TestCheckNamesFileLineCol(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("gateway:\n  id: gw-1\n  county: \"320583\"\n  township: \"320583104\"\n  colour: blue\nuplink:\n  brokers: [\"tcp://127.0.0.1:1883\"]\n"), 0o644)
	code, _, errOut := run(t, "check", path)
	if code != 1 || !strings.Contains(errOut, "bad.yaml:5:3") || !strings.Contains(errOut, `unknown key "colour"`) {
		t.Fatalf("check = %d, stderr %q", code, errOut)
	}
}

func TestHelpEverywhere(t *testing.T) {
	if code, out, _ := run(t, "--help"); code != 0 || !strings.Contains(out, "Commands:") {
		t.Fatalf("--help = %d %q", code, out)
	}
	for _, c := range commands() {
		code, _, errOut := run(t, c.name, "-h")
		if code != 0 || !strings.Contains(errOut, "Usage: townlink "+c.name) {
			t.Errorf("%s -h = %d, %q", c.name, code, errOut)
		}
	}
	if code, _, errOut := run(t, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command = %d %q", code, errOut)
	}
	if code, _, _ := run(t, "run", "-c", "/nonexistent/townlink.yaml"); code != 1 {
		t.Errorf("run with a missing config = %d, want 1", code)
	}
}

// tail against the embedded broker: decodes what a gateway publishes and
// ends with a verdict that names a hole.
func TestTailPrintsRecordsAndVerdict(t *testing.T) {
	b, err := mqttbroker.Start(mqttbroker.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	url := "tcp://" + b.Addr()

	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(context.Background(), []string{"tail", "-broker", url, "-n", "3", "-for", "20s", "-id", "tail-test"}, &out, &errOut)
	}()
	pub, err := mqttpub.New(mqttpub.Options{Brokers: []string{url}, ClientID: "gw-test-01"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub.Start(ctx)
	defer pub.Close()
	topic := wire.Topic("320583", "320583104", "gw-test-01", wire.StreamTelemetry)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(errOut.String(), "subscribed") || !pub.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("tail did not subscribe")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the SUBSCRIBE is acknowledged before tail says so; allow the broker to settle
	for _, seqs := range [][]uint64{{1, 2}, {4}} {
		bt := &wire.Batch{V: 1, GW: "gw-test-01", Stream: wire.StreamTelemetry}
		for _, s := range seqs {
			bt.Recs = append(bt.Recs, wire.Record{Seq: s, Dev: "m1", Kind: "power", TS: time.Now().UnixMilli(), TSrc: "gateway",
				Vals: map[string]wire.Value{"energy_kwh": wire.Dec(12345678, -2)}})
		}
		p, err := wire.Encode(bt)
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Publish(ctx, topic, p); err != nil {
			t.Fatal(err)
		}
	}
	code := <-done
	if code != 1 {
		t.Errorf("tail exit = %d, want 1 (seq 3 is missing)\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "#1 m1 power") || !strings.Contains(out.String(), "energy_kwh=123456.78") {
		t.Errorf("records not printed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "verdict") || !strings.Contains(out.String(), "MISSING 3") {
		t.Errorf("no verdict naming the hole:\n%s", out.String())
	}
}

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestCheckRefusesAnOpenPasswordFile(t *testing.T) {
	path := demoConfig(t)
	pw := filepath.Join(filepath.Dir(path), "secrets", "zfy-001.pw")
	if err := os.Chmod(pw, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run(t, "check", path)
	if code != 1 || !strings.Contains(errOut, "password_file: device zfy-001: ") || !strings.Contains(errOut, "run: chmod 600 "+pw) {
		t.Fatalf("check = %d, stderr %q; want exit 1 naming chmod 600 %s", code, errOut, pw)
	}
}

// A Modbus RTU device at 9600 baud polled every 200 ms with no timeout is
// accepted, and check says which timeout it chose and why.
func TestCheckPrintsTheTimeoutItChose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fast.yaml")
	os.WriteFile(path, []byte(`gateway:
  id: gw-1
  county: "320583"
  township: "320583104"
uplink:
  brokers: ["tcp://127.0.0.1:1883"]
lines:
  - {name: L1, port: /dev/ttyUSB0, baud: 9600}
devices:
  - id: x
    driver: modbus
    line: L1
    unit: 1
    interval: 200ms
    points:
      - {name: level_m, table: holding, address: 0, type: uint16}
`), 0o644)
	code, out, errOut := run(t, "check", path)
	if code != 0 || !strings.Contains(out, "modbus dev x: timeout 150ms (derived: interval 200ms, 9600 8N1)") ||
		!strings.Contains(out, "modbus dev x: retries 2 (modbus default)") || !strings.Contains(out, "meter clocks in Asia/Shanghai") ||
		!strings.Contains(out, "silence before a request at least 3.65ms, a silent device retried every 1s to 5m0s") {
		t.Fatalf("check = %d\n%s%s", code, out, errOut)
	}
}

// A county broker restarted while tail watches: tail says that it lost the
// connection and when it is back (what the broker took in between, with
// no subscriber, never reaches it: the verdict's MISSING is explained).
func TestTailSaysWhenTheBrokerIsGoneAndBack(t *testing.T) {
	b, err := mqttbroker.Start(mqttbroker.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	var out, errOut syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"tail", "-broker", "tcp://" + addr, "-id", "tail-outage-test"}, &out, &errOut)
	}()
	from := 0 // what tail says is looked for after what it said before
	waitFor := func(what string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			if i := strings.Index(errOut.String()[from:], what); i >= 0 {
				from += i + len(what)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("tail did not say %q:\n%s", what, errOut.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(`msg="mqttpub: connected`)
	b.Close()
	waitFor("connection lost")
	b2, err := mqttbroker.Start(mqttbroker.Options{Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	waitFor(`msg="mqttpub: connected`) // at once, or after failed tries
	cancel()
	<-done
}
