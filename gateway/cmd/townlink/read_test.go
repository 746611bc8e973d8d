package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/townlink/townlink/firmware-sim/cjt188sim"
	"github.com/townlink/townlink/firmware-sim/dlt645sim"
	"github.com/townlink/townlink/hardware"
)

// townlink read -v prints every request and reply in hex, then the
// points with units.
func TestReadVerbosePrintsFrames(t *testing.T) {
	mode := hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}
	m := dlt645sim.NewMeter("202612070001", dlt645sim.V2007)
	m.Set("energy_kwh", "123456.78")
	path := serveGated(t, 2400, dlt645sim.NewLine(mode, m))
	dir := t.TempDir()
	cfg := strings.ReplaceAll(baseConfig, "@DIR@", dir) + `lines:
  - {name: RS485-2, port: ` + path + `, baud: 2400, parity: even}
devices:
  - {id: office-meter, driver: dlt645, line: RS485-2, address: "202612070001", read: [energy_kwh, voltage_a_v]}
`
	file := filepath.Join(dir, "townlink.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "read", "-c", file, "-v", "office-meter")
	if code != 0 {
		t.Fatalf("read = %d\n%s%s", code, out, errOut)
	}
	for _, re := range []string{
		`(?m)^> FE FE FE FE 68 01 00 07 12 26 20 68 11 04 33 33 34 33 [0-9A-F]{2} 16$`, // read 00010000
		`(?m)^< (FE )*68 01 00 07 12 26 20 68 91 08 33 33 34 33 AB 89 67 45 [0-9A-F]{2} 16$`,
		`(?m)^  energy_kwh\s+123456.78\s+kWh$`,
		`(?m)^  voltage_a_v\s+\d+\.\d\s+V$`,
		`office-meter: dlt645 on RS485-2 \(/dev/pts/\d+, 2400 8E1\), address 202612070001`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output lacks %s:\n%s", re, out)
		}
	}
	if code, _, errOut := run(t, "read", "-c", file, "no-such"); code != 2 || !strings.Contains(errOut, `no device "no-such"`) {
		t.Errorf("unknown device: %d %s", code, errOut)
	}
}

// cancelOn is a stderr that cancels when a line contains match, as Ctrl-C
// would while the scan runs.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	match  string
	cancel context.CancelFunc
}

func (c *cancelOn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(b)
	if strings.Contains(c.buf.String(), c.match) {
		c.cancel()
	}
	return len(b), nil
}

// Ctrl-C stops the scan cleanly: it prints what it found so far and its
// config entries, and exits 0.
func TestScanInterruptedPrintsWhatItFound(t *testing.T) {
	mode := hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}
	path := serveGated(t, 2400, dlt645sim.NewLine(mode,
		dlt645sim.NewMeter("202612070001", dlt645sim.V2007), dlt645sim.NewMeter("202612070050", dlt645sim.V2007)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &cancelOn{match: " 1 found", cancel: cancel}
	dir := t.TempDir()
	base := filepath.Join(dir, "base.yaml")
	if err := os.WriteFile(base, []byte(strings.ReplaceAll(baseConfig, "@DIR@", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	code := Main(ctx, []string{"scan", "-c", base, "--baud", "2400-8E1", "--protocols", "dlt645", "--wait", "150ms", path}, &stdout, stderr)
	if code != 0 {
		t.Fatalf("scan = %d\n%s%s", code, stdout.String(), stderr.buf.String())
	}
	out := stdout.String()
	if !strings.Contains(stderr.buf.String(), "scan interrupted: 1 device(s) found so far") ||
		!regexp.MustCompile(`(?m)^202612070001\s+dlt645`).MatchString(out) || strings.Contains(out, "202612070050") ||
		!strings.Contains(out, `address: "202612070001"`) {
		t.Errorf("interrupted scan printed\n%s\nstderr:\n%s", out, stderr.buf.String())
	}
	// Found, but stopped before its first reading: the row says so
	// rather than leaving the column blank.
	if !regexp.MustCompile(`(?m)^202612070001\s+dlt645.*\(not read: the scan stopped first\)$`).MatchString(out) {
		t.Errorf("the found meter's row does not say it was not read:\n%s", out)
	}
}

// A line of the config is scanned at its own setting, and the devices the
// config already reads are not offered again.
func TestScanConfiguredLine(t *testing.T) {
	mode := hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}
	path := serveGated(t, 2400, dlt645sim.NewLine(mode, dlt645sim.NewMeter("202612070001", dlt645sim.V2007)),
		cjt188sim.NewLine(mode, cjt188sim.NewMeter("20261207000101", cjt188sim.ColdWater)))
	dir := t.TempDir()
	cfg := strings.ReplaceAll(baseConfig, "@DIR@", dir) + `lines:
  - {name: RS485-2, port: ` + path + `, baud: 2400, parity: even}
devices:
  - {id: office-meter, driver: dlt645, line: RS485-2, address: "202612070001"}
`
	file := filepath.Join(dir, "townlink.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "scan", "-c", file, "--protocols", "dlt645,cjt188", "--wait", "200ms", "RS485-2")
	if code != 0 {
		t.Fatalf("scan = %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"# already in the config as office-meter", "  - id: water-20261207000101", "    line: RS485-2"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\nlines:") || strings.Contains(errOut, "1200 8E1") {
		t.Errorf("a configured line is scanned at its setting only, and not written again:\n%s%s", out, errOut)
	}
	// The entries pasted under the config's own devices pass check.
	_, entries, _ := strings.Cut(out, "devices:\n")
	if err := os.WriteFile(file, []byte(cfg+entries), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run(t, "check", file); code != 0 || !strings.Contains(out, "1 lines, 2 devices") {
		t.Errorf("check = %d\n%s%s", code, out, errOut)
	}
}

// A meter read at the wrong baud (or address) hears nothing it
// understands: read says what to check and how to find the right setting,
// not only "device did not answer".
func TestReadAtTheWrongBaudSaysWhatToCheck(t *testing.T) {
	mode := hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}
	m := dlt645sim.NewMeter("202612070001", dlt645sim.V2007)
	path := serveGated(t, 2400, dlt645sim.NewLine(mode, m))
	dir := t.TempDir()
	cfg := strings.ReplaceAll(baseConfig, "@DIR@", dir) + `lines:
  - {name: RS485-2, port: ` + path + `, baud: 9600, parity: even}
devices:
  - {id: office-meter, driver: dlt645, line: RS485-2, address: "202612070001", read: [energy_kwh], timeout: 300ms, retries: 0}
`
	file := filepath.Join(dir, "townlink.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "read", "-c", file, "office-meter")
	if code != 1 || !strings.Contains(errOut, "did not answer") ||
		!strings.Contains(errOut, "nothing answered at 9600 8E1, address 202612070001: check the address, the line's baud and parity — `townlink scan --baud auto RS485-2` finds both") {
		t.Fatalf("read = %d\n%s%s", code, out, errOut)
	}
}
