package main

import (
	"context"
	"strings"
	"testing"
)

// While the gateway runs, read and scan go through its control socket and
// line owner instead of opening the port a second time.
func TestReadAndScanGoThroughTheRunningGateway(t *testing.T) {
	path := statusGateway(t)
	code, out, errOut := run(t, "read", "-c", path, "-v", "tank-level-and-temperature-sensor-north")
	if code != 0 || !strings.Contains(out, "temp_c") || !strings.Contains(out, "21.5") || !strings.Contains(out, "level_cm") ||
		!strings.Contains(out, "through the running gateway") {
		t.Fatalf("read through the gateway = %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run(t, "scan", "-c", path, "--protocols", "modbus", "--units", "1-5", "RS485-1")
	if code != 0 {
		t.Fatalf("scan through the gateway = %d\n%s%s", code, out, errOut)
	}
	// Unit 3 answers; unit 4 is silent; both are on the line the gateway owns.
	// The table of a scan through the socket has no DEVICE column.
	if !strings.Contains(out, "Modbus RTU") || !strings.Contains(out, "unit: 3") || strings.Contains(out, "unit: 4") || strings.Contains(out, "DEVICE") {
		t.Errorf("scan through the gateway found:\n%s%s", out, errOut)
	}
}

// townlink scan without a config (none at /etc/townlink and no -c, as
// the README's `townlink scan --baud auto RS485-2`) has no gateway to ask:
// it opens the port itself instead of crashing on the missing config.
func TestRemoteForWithoutConfig(t *testing.T) {
	r, err := remoteFor(context.Background(), nil)
	if r != nil || err != nil {
		t.Fatalf("remoteFor(nil config) = %v, %v; want no remote and no error", r, err)
	}
}
