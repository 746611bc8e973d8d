package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/townlink/townlink/firmware-sim/modbussim"
	"github.com/townlink/townlink/gateway"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/localapi"
	"github.com/townlink/townlink/gateway/recent"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serialsim"
)

// statusGateway runs a real gateway with a Modbus unit that answers and
// one that is silent on a PTY, its uplink unreachable, and returns its
// config path.
func statusGateway(t *testing.T) string {
	t.Helper()
	pty, err := serialsim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	tank := modbussim.NewUnit(3)
	tank.SetHolding(0, 215, 42)
	pump := modbussim.NewUnit(4)
	pump.SetFault(modbussim.Silent())
	ctx, cancel := context.WithCancel(context.Background())
	simDone := make(chan struct{})
	go func() { defer close(simDone); modbussim.NewBus(hardware.Mode{Baud: 9600}, tank, pump).Serve(ctx, pty) }()
	t.Cleanup(func() { cancel(); <-simDone; pty.Close() })

	dir := t.TempDir()
	cfgText := fmt.Sprintf(`gateway: {id: gw-status-01, county: "320583", township: "320583104", data_dir: %q}
uplink: {brokers: ["tcp://127.0.0.1:1"], backoff: {min: 100ms, max: 1s}}
lines: [{name: RS485-1, port: %q, baud: 9600}]
devices:
  - {id: tank-level-and-temperature-sensor-north, driver: modbus, line: RS485-1, unit: 3, interval: 200ms, timeout: 100ms,
     points: [{name: temp_c, table: holding, address: 0, type: int16, scale: 0.1}, {name: level_cm, table: holding, address: 1, type: uint16}]}
  - {id: pump, driver: modbus, line: RS485-1, unit: 4, interval: 200ms, timeout: 50ms, retries: 0,
     points: [{name: speed_rpm, table: holding, address: 0, type: uint16}]}
`, filepath.Join(dir, "data"), pty.Path())
	path := filepath.Join(dir, "townlink.yaml")
	if err := os.WriteFile(path, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	gctx, gcancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(gctx) }()
	t.Cleanup(func() {
		gcancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	c := localapi.NewClient(cfg.Gateway.Socket)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := c.Status(context.Background())
		if err == nil && len(st.Devices) == 2 && st.Devices[0].State == "ok" && len(st.Devices[0].Values) == 2 && st.Devices[1].State == "down" {
			return path
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not ready: %+v %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStatusPrintsTheRunningGateway(t *testing.T) {
	path := statusGateway(t)
	code, out, errOut := run(t, "status", "-c", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"gw-status-01  townlink ",
		"uplink   OFFLINE, backlog ",
		"DEVICES  2: 1 ok, 0 degraded, 1 down",
		"  tank-level-and-temper… ok        modbus      RS485-1    read ",
		"      level_cm 42  temp_c 21.5",
		"  pump                   DOWN      modbus      RS485-1    no value yet\n      last error: ",
		"LINES    busy",
		"  RS485-1  /dev/pts/",
		"STREAMS      backlog    oldest unsent  last seq",
		"  telemetry  ",
		"ALARMS  0 active",
		"CERTIFICATES\n  none (plain MQTT uplink)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	checkWidth(t, out)

	code, out, _ = run(t, "status", "-c", path, "-json")
	if code != 0 || !strings.Contains(out, `"gateway": "gw-status-01"`) {
		t.Errorf("-json: %d %s", code, out)
	}
}

func TestStatusSaysWhenTheGatewayIsNotRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "townlink.sock")
	code, _, errOut := run(t, "status", "-socket", sock)
	want := "no gateway answering on " + sock + ": is townlink running? systemctl status townlink"
	if code != 1 || !strings.Contains(errOut, want) {
		t.Fatalf("exit %d, stderr %q; want 1 and %q", code, errOut, want)
	}
}

func checkWidth(t *testing.T, out string) {
	t.Helper()
	for i, l := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(l); n > width {
			t.Errorf("line %d is %d columns: %q", i+1, n, l)
		}
	}
}

// Whatever the gateway has, the lines fit an 80-column terminal.
func TestStatusFitsEightyColumns(t *testing.T) {
	long := strings.Repeat("x", 120)
	now := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	var vals []recent.Point
	for i := range 30 {
		vals = append(vals, recent.Point{Name: fmt.Sprintf("point_%02d_kwh", i), Value: "123456.78", Time: now})
	}
	vals = append(vals, recent.Point{Name: "note", Value: long, Time: now})
	st := &localapi.Status{
		Gateway: "gw-1", Version: "0.1", Time: now, Clock: "synced",
		Uplink:  localapi.Uplink{Connected: true, Brokers: []string{"tls://" + long + ":8883"}, Backlog: 123456789, OldestUnsentMS: 3 * 3600 * 1000},
		Devices: []localapi.Device{{ID: long, Driver: "dlt645-1997", Line: long, State: "degraded", Values: vals}},
		Lines:   []localapi.Line{{Name: long, Port: long, Mode: "2400 8E1", Utilisation: 0.5, Timeouts: 1 << 40}},
		Streams: []localapi.Stream{{Name: "telemetry", Backlog: 1 << 40, OldestUnsentMS: 1 << 40}},
		Dropped: map[string]uint64{long: 1},
		Alarms:  []localapi.Alarm{{Device: long, Rule: long, Severity: "major", Message: long, Since: now}},
		Certs:   []localapi.Cert{{Name: "uplink_client", DaysLeft: 12}, {Name: "uplink_ca", DaysLeft: -3}},
	}
	var b bytes.Buffer
	printStatus(&b, st, 0)
	checkWidth(t, b.String())
	for _, want := range []string{"RENEW SOON", "EXPIRED 3 days ago", "MAJOR", "oldest unsent 3 h 0 min", "point_29_kwh 123456.78"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
}

func TestStatusShortensLongDevices(t *testing.T) {
	var vals []recent.Point
	for i := range 40 {
		vals = append(vals, recent.Point{Name: fmt.Sprintf("field_%02d", i), Value: "some value"})
	}
	st := &localapi.Status{Gateway: "gw-1", Devices: []localapi.Device{{ID: "zfy-001", Driver: "recorder", State: "ok", Values: vals}}}
	var short, all bytes.Buffer
	printStatus(&short, st, 3)
	printStatus(&all, st, 0)
	if !strings.Contains(short.String(), "more lines of points (townlink status -all)") || strings.Contains(short.String(), "field_39") {
		t.Errorf("not shortened:\n%s", short.String())
	}
	if !strings.Contains(all.String(), "field_39 some value") || strings.Contains(all.String(), "more lines") {
		t.Errorf("-all left points out:\n%s", all.String())
	}
	checkWidth(t, short.String())
}
