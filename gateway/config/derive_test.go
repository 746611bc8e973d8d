package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers/dlt645"
)

const head = `gateway:
  id: gw-1
  county: 320583
  township: 320583104
uplink:
  brokers: ["tcp://127.0.0.1:1883"]
lines:
  - name: L1
    port: /dev/ttyUSB0
    baud: 9600
devices:
`

func modbusDev(extra string) string {
	return head + `  - id: x
    driver: modbus
    line: L1
    unit: 1
` + extra + `    points:
      - {name: level_m, table: holding, address: 0, type: uint16}
`
}

func derived(c *Config, dev, key string) (Derived, bool) {
	for _, d := range c.Derived {
		if d.Device == dev && d.Key == key {
			return d, true
		}
	}
	return Derived{}, false
}

// A Modbus RTU device at 9600 baud polled every 200 ms with no timeout
// gets one that fits (3/4 of the interval), said how it was chosen.
func TestTimeoutDerivedFromInterval(t *testing.T) {
	for _, c := range []struct {
		interval string
		want     time.Duration
		from     string
	}{
		{"200ms", 150 * time.Millisecond, "derived: interval 200ms, 9600 8N1"},
		{"1s", 750 * time.Millisecond, "derived: interval 1s, 9600 8N1"},
		{"10s", time.Second, "modbus default"},
	} {
		cfg, err := Parse("t.yaml", []byte(modbusDev("    interval: "+c.interval+"\n")))
		if err != nil {
			t.Fatalf("interval %s: %v", c.interval, err)
		}
		dv := cfg.Devices[0]
		d, ok := derived(cfg, "x", "timeout")
		if dv.Timeout != c.want || !ok || d.Value != c.want.String() || d.From != c.from {
			t.Errorf("interval %s: timeout %v, derived %+v; want %v (%s)", c.interval, dv.Timeout, d, c.want, c.from)
		}
		if r, ok := derived(cfg, "x", "retries"); !ok || dv.Retries != 2 || r.Value != "2" {
			t.Errorf("retries %d, derived %+v; want the driver's 2", dv.Retries, r)
		}
	}
}

// A timeout the user wrote is theirs: kept, and refused at its own
// position when it does not fit the interval.
func TestUserTimeoutIsKeptOrRefusedAtItsLine(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(modbusDev("    interval: 1s\n    timeout: 300ms\n")))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := derived(cfg, "x", "timeout"); ok || cfg.Devices[0].Timeout != 300*time.Millisecond {
		t.Errorf("user timeout replaced: %v, %+v", cfg.Devices[0].Timeout, cfg.Derived)
	}
	_, err = Parse("t.yaml", []byte(modbusDev("    interval: 1s\n    timeout: 1s\n")))
	var e *Error
	if !errors.As(err, &e) || e.Line != 17 || e.Col != 14 || e.Path != "devices[0].timeout" || !strings.Contains(e.Msg, "not shorter than the interval") {
		t.Errorf("timeout = interval: %v; want an error at t.yaml:17:14 devices[0].timeout", err)
	}
}

// Only when no timeout at all can fit (a DL/T 645 reply at 1200 baud
// needs more than the interval) is the interval refused, at its line.
func TestIntervalTooShortForAnyReply(t *testing.T) {
	src := strings.Replace(head, "baud: 9600", "baud: 1200\n    parity: even", 1) + `  - id: m
    driver: dlt645
    line: L1
    address: "000000000001"
    interval: 500ms
`
	_, err := Parse("t.yaml", []byte(src))
	var e *Error
	if !errors.As(err, &e) || e.Path != "devices[0].interval" || e.Line != 17 || !strings.Contains(e.Msg, "too short") {
		t.Errorf("err = %v; want the interval refused at t.yaml:17", err)
	}
}

// A DL/T 645 meter with no read: reads the driver's default: all three
// phases.
func TestDefaultReadIsTheDrivers(t *testing.T) {
	src := head + `  - id: m
    driver: dlt645
    line: L1
    address: "000000000001"
`
	cfg, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Devices[0].Read
	if !slices.Equal(got, dlt645.StandardPoints(dlt645.V2007)) || !slices.Contains(got, "voltage_c_v") || !slices.Contains(got, "current_b_a") {
		t.Errorf("read = %v, want dlt645.StandardPoints", got)
	}
	if g, ok := derived(cfg, "m", "gap"); !ok || g.Value != dlt645.DefaultGap.String() {
		t.Errorf("gap not reported: %+v", cfg.Derived)
	}
}

func TestTimezone(t *testing.T) {
	t.Setenv("TZ", "UTC")
	cfg, err := Parse("t.yaml", []byte(head))
	if err != nil {
		t.Fatal(err)
	}
	// 2026-12-07 00:00 UTC is 08:00 in the meters' zone, whatever TZ says.
	if h := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC).In(cfg.Gateway.Location).Hour(); h != 8 || cfg.Gateway.Timezone != "Asia/Shanghai" {
		t.Errorf("default zone %v: 00:00Z is %d h, want 8", cfg.Gateway.Location, h)
	}
	src := strings.Replace(head, "id: gw-1", "id: gw-1\n  timezone: Asia/Urumqi", 1)
	if cfg, err = Parse("t.yaml", []byte(src)); err != nil || cfg.Gateway.Location.String() != "Asia/Urumqi" {
		t.Errorf("timezone Asia/Urumqi: %v, %v", cfg, err)
	}
	for _, bad := range []string{"Mars/Olympus", "Local"} {
		src := strings.Replace(head, "id: gw-1", "id: gw-1\n  timezone: "+bad, 1)
		_, err := Parse("t.yaml", []byte(src))
		var e *Error
		if !errors.As(err, &e) || e.Line != 3 || e.Path != "gateway.timezone" {
			t.Errorf("timezone %s: %v; want an error at t.yaml:3 gateway.timezone", bad, err)
		}
	}
}
