package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/firmware-sim/cjt188sim"
	"github.com/townlink/townlink/firmware-sim/dlt645sim"
	"github.com/townlink/townlink/firmware-sim/modbussim"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serialsim"
)

// serveGated runs simulators on one PTY shared through a Multidrop, all
// listening at baud: a master at another rate is heard as garbage. It
// returns the path to scan.
func serveGated(t *testing.T, baud int, srvs ...interface {
	Serve(context.Context, hardware.Port) error
}) string {
	t.Helper()
	pty, err := serialsim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	md := serialsim.NewMultidrop(serialsim.NewBaudGate(pty, baud))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, len(srvs)+1)
	for _, s := range srvs {
		p := md.Attach()
		wg.Add(1)
		go func() { defer wg.Done(); errs <- s.Serve(ctx, p) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); errs <- md.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil && !errors.Is(err, serialsim.ErrMultidropStopped) {
				t.Errorf("simulator on %s: %v", pty.Path(), err)
			}
		}
		pty.Close()
	})
	return pty.Path()
}

const baseConfig = `gateway:
  id: gw-scan-test
  county: "320583"
  township: "320583104"
  data_dir: @DIR@/data
uplink:
  brokers: ["tcp://127.0.0.1:1"]
`

// section returns the YAML items under key: in a scan's printed config.
func section(t *testing.T, out, key string) string {
	t.Helper()
	_, cfg, ok := strings.Cut(out, "# Config entries")
	if !ok {
		t.Fatalf("no config entries in\n%s", out)
	}
	_, rest, ok := strings.Cut(cfg, "\n"+key+":\n")
	if !ok {
		t.Fatalf("no %s: section in\n%s", key, cfg)
	}
	if i := strings.Index(rest, "\ndevices:\n"); i >= 0 {
		rest = rest[:i+1]
	}
	return rest
}

// The bar: three DL/T 645-2007 meters and two CJ/T 188 water meters share
// one 2400 8E1 line with a silent meter of each kind; three Modbus units
// (one silent) sit on another line at 19200 8N1. townlink scan --baud
// auto finds every device that answers and none that does not, its
// printed config passes townlink check, and townlink read then reads
// every device it configured.
func TestScanTownshipLinesThenCheckAndRead(t *testing.T) {
	e1 := dlt645sim.NewMeter("202612070001", dlt645sim.V2007)
	e1.Set("energy_kwh", "123456.78")
	e2 := dlt645sim.NewMeter("202612070002", dlt645sim.V2007)
	e2.Set("energy_kwh", "8812.05")
	e3 := dlt645sim.NewMeter("202612070013", dlt645sim.V2007)
	e3.Set("energy_kwh", "301.40")
	eDead := dlt645sim.NewMeter("202612070009", dlt645sim.V2007)
	eDead.SetFault(dlt645sim.Silent)
	w1 := cjt188sim.NewMeter("20261207000101", cjt188sim.ColdWater)
	w2 := cjt188sim.NewMeter("20261207000102", cjt188sim.ColdWater)
	wDead := cjt188sim.NewMeter("20261207000199", cjt188sim.ColdWater)
	wDead.SetFault(cjt188sim.Silent)
	for w, v := range map[*cjt188sim.Meter]string{w1: "1024.50", w2: "77.03", wDead: "5.00"} {
		if err := w.SetValue("flow_m3", v); err != nil {
			t.Fatal(err)
		}
	}
	modeA := hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}
	pathA := serveGated(t, 2400, dlt645sim.NewLine(modeA, e1, e2, e3, eDead), cjt188sim.NewLine(modeA, w1, w2, wDead))

	modeB := hardware.Mode{Baud: 19200}
	u3 := modbussim.NewUnit(3)
	u3.SetHolding(0, 1234)
	u17 := modbussim.NewUnit(17) // no holding register: the probe gets exception 02
	u17.SetInput(0, 55)
	u100 := modbussim.NewUnit(100)
	u100.SetHolding(0, 1)
	u100.SetFault(modbussim.Silent())
	pathB := serveGated(t, 19200, modbussim.NewBus(modeB, u3, u17, u100))

	dir := t.TempDir()
	base := filepath.Join(dir, "base.yaml")
	head := strings.ReplaceAll(baseConfig, "@DIR@", dir)
	if err := os.WriteFile(base, []byte(head), 0o644); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var codeA, codeB int
	var outA, outB, errA, errB string
	wg.Add(2)
	go func() {
		defer wg.Done()
		codeA, outA, errA = run(t, "scan", "-c", base, "--baud", "auto", "--protocols", "dlt645,cjt188", "--wait", "250ms", pathA)
	}()
	go func() {
		defer wg.Done()
		codeB, outB, errB = run(t, "scan", "-c", base, "--baud", "auto", "--protocols", "modbus", "--wait", "30ms", pathB)
	}()
	wg.Wait()
	if codeA != 0 || codeB != 0 {
		t.Fatalf("scan A = %d\n%s%s\nscan B = %d\n%s%s", codeA, outA, errA, codeB, outB, errB)
	}
	t.Logf("scan A:\n%s\nscan B:\n%s", outA, outB)

	rows := regexp.MustCompile(`(?m)^(\S+(?: \d+)?)\s+(dlt645|cjt188|modbus)\s`)
	var got []string
	for _, m := range rows.FindAllStringSubmatch(outA+outB, -1) {
		got = append(got, m[1])
	}
	want := []string{"202612070001", "202612070002", "202612070013", "20261207000101", "20261207000102", "unit 3", "unit 17"}
	if strings.Join(sortedCopy(got), ",") != strings.Join(sortedCopy(want), ",") {
		t.Errorf("found %v, want %v", got, want)
	}
	for _, re := range []string{`DL/T 645-2007\s+2400 8E1`, `CJ/T 188-2004\s+2400 8E1`, `Modbus RTU\s+19200 8N1`,
		`energy_kwh=123456.78 kWh`, `flow_m3=1024.50 m³`, `holding_0=1234`, `input_0=55`, `exception 02`} {
		if !regexp.MustCompile(re).MatchString(outA + outB) {
			t.Errorf("scan output lacks %s", re)
		}
	}
	if !strings.Contains(errA, "left") || !strings.Contains(errB, "Modbus RTU at 19200 8N1") {
		t.Errorf("no progress on stderr:\n%s\n%s", errA, errB)
	}

	// The printed entries, pasted into the config, pass check.
	cfg := head + "lines:\n" + section(t, outA, "lines") + section(t, outB, "lines") +
		"devices:\n" + section(t, outA, "devices") + section(t, outB, "devices")
	path := filepath.Join(dir, "townlink.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "check", path)
	if code != 0 || !strings.Contains(out, "2 lines, 7 devices") {
		t.Fatalf("check = %d\n%s%s\nconfig:\n%s", code, out, errOut, cfg)
	}

	// And every device they configure reads.
	reads := map[string]string{
		"meter-202612070001":       `energy_kwh\s+123456.78\s+kWh`,
		"meter-202612070002":       `energy_kwh\s+8812.05\s+kWh`,
		"meter-202612070013":       `energy_kwh\s+301.40\s+kWh`,
		"water-20261207000101":     `flow_m3\s+1024.50\s+m³`,
		"water-20261207000102":     `flow_m3\s+77.03\s+m³`,
		lineID(pathB) + "-unit-3":  `holding_0\s+1234`,
		lineID(pathB) + "-unit-17": `input_0\s+55`,
	}
	for id, re := range reads {
		code, out, errOut := run(t, "read", "-c", path, id)
		if code != 0 || !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("read %s = %d\n%s%s\nwant %s", id, code, out, errOut, re)
		}
	}

	// And the gateway run with that config reads every device (its county
	// broker unreachable: it reads and queues anyway).
	var ids []string
	for id := range reads {
		ids = append(ids, id)
	}
	runGatewayUntilOK(t, path, ids)
}

// runGatewayUntilOK runs townlink run -c path with a metrics listener and
// waits until /metrics reports every device ok (state 2).
func runGatewayUntilOK(t *testing.T, path string, ids []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "gateway:\n", "gateway:\n  metrics_listen: \""+addr+"\"\n", 1)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan int, 1)
	go func() { done <- Main(ctx, []string{"run", "-c", path}, &logs, &logs) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("run = %d\n%s", code, logs.String())
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		metrics := ""
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			metrics = string(body)
		}
		var notOK []string
		for _, id := range ids {
			if !strings.Contains(metrics, `townlink_device_state{device="`+id+`"} 2`) {
				notOK = append(notOK, id)
			}
		}
		if len(notOK) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not read %v\n%s", notOK, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func lineID(path string) string { return "pts-" + filepath.Base(path) }

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}

// townlink scan dev/RS485-2 (a path from here) printed `port: dev/RS485-2`
// in the entries to paste: the gateway, started elsewhere, would not find
// it. The entries name the port from /.
func TestScanOfARelativePathNamesThePortFromRoot(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := resolveLine(nil, "dev/RS485-2")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(wd, "dev/RS485-2"); tgt.Port != want || tgt.Path != want {
		t.Errorf("port %q, path %q; want both %q", tgt.Port, tgt.Path, want)
	}
}

// A port that does not open (missing, in use) is reported as that alone:
// not also as an empty table and "no device answered", which reads as if
// the line had been listened to.
func TestScanOfAPortThatDoesNotOpenSaysOnlyThat(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "townlink.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(baseConfig, "@DIR@", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	code := Main(context.Background(), []string{"scan", "-c", path, "--baud", "2400-8E1", "--protocols", "dlt645", filepath.Join(dir, "ttyUSB9")}, &out, &errOut)
	if code == 0 || !strings.Contains(errOut.String(), "cannot open port") {
		t.Fatalf("exit %d, stderr %q: want a failure naming the port that did not open", code, errOut.String())
	}
	if strings.Contains(out.String(), "no device answered") || strings.Contains(out.String(), "ADDRESS") {
		t.Errorf("stdout %q: want nothing (the line was never listened to)", out.String())
	}
}
