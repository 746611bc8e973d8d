package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/hardware"
)

func dec(t *testing.T, s string) drivers.Value {
	t.Helper()
	v, err := drivers.ParseDecimal(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestFullSample(t *testing.T) {
	c := mustLoad(t, "testdata/good/full.yaml")
	g := c.Gateway
	if g.ID != "gw-zhoushi-01" || g.County != "320583" || g.Township != "320583104" ||
		g.DataDir != "/var/lib/townlink" || g.Board != "generic-linux" || g.LogLevel != slog.LevelInfo ||
		g.StatusInterval != 30*time.Second || g.MetricsListen != "127.0.0.1:9108" {
		t.Errorf("gateway = %+v", g)
	}
	u := c.Uplink
	if !u.TLS() || u.Ack != AckPlatform || u.Batch != (Batch{100, 64 * KiB, 200 * time.Millisecond}) ||
		u.Window != 8 || u.Backoff != (Backoff{time.Second, 2 * time.Minute}) || u.DrainRate != 50000 ||
		u.Quota != (Quota{Telemetry: 2 * GiB, Events: 512 * MiB}) || u.Key != "/etc/townlink/gw.key" {
		t.Errorf("uplink = %+v", u)
	}
	if len(c.Lines) != 2 {
		t.Fatalf("lines = %+v", c.Lines)
	}
	if m := c.Lines[0].Mode(); m != (hardware.Mode{Baud: 9600, DataBits: 8, Parity: hardware.ParityNone, StopBits: 1}) {
		t.Errorf("RS485-1 mode = %v", m)
	}
	// RS485-2 leaves its settings to its devices: dlt645 and cjt188, both 2400 8E1.
	if m := c.Lines[1].Mode(); m != (hardware.Mode{Baud: 2400, DataBits: 8, Parity: hardware.ParityEven, StopBits: 1}) {
		t.Errorf("RS485-2 mode = %v, want 2400 8E1 from its meters", m)
	}
	if c.FieldBroker.MaxPayload != 256*KiB || !c.FieldBroker.Enabled() || c.FieldBroker.KeepaliveMax != 5*time.Minute || c.FieldBroker.MaxPendingPerAddr != 32 {
		t.Errorf("field broker = %+v", c.FieldBroker)
	}
	byID := map[string]*Device{}
	for i := range c.Devices {
		byID[c.Devices[i].ID] = &c.Devices[i]
	}
	if len(byID) != 10 {
		t.Fatalf("%d devices", len(byID))
	}
	plc := byID["chem-plant-3-outlet"]
	if plc.Kind != KindEnterprise || plc.Unit != 3 || plc.Line != "RS485-1" || plc.Interval != 10*time.Second ||
		plc.Timeout != time.Second || plc.Retries != 2 || plc.Grid != "320583104001-02" || len(plc.Points) != 5 ||
		!reflect.DeepEqual(plc.Outputs, []string{"pump_running"}) {
		t.Errorf("modbus device = %+v", plc)
	}
	temp := plc.Points[1]
	if temp.Name != "temp_c" || temp.Table != TableInput || temp.Address != 10 || temp.Type != TypeInt16 ||
		temp.Order != OrderABCD || !temp.Scale.Equal(dec(t, "0.1")) || !temp.Offset.Equal(dec(t, "0")) {
		t.Errorf("temp_c = %+v", temp)
	}
	if p := plc.Points[2]; p.Table != TableCoil || p.Type != "" || p.Order != "" || p.Scale.Kind() != drivers.KindNone {
		t.Errorf("coil point = %+v", p)
	}
	if p := plc.Points[0]; p.Scale.Kind() != drivers.KindNone || p.Type.Words() != 2 {
		t.Errorf("float point = %+v", p)
	}
	tcp := byID["plant-7-scada"]
	if tcp.Host != "10.0.0.5:502" || tcp.Unit != 1 || tcp.Kind != KindEnterprise || tcp.Line != "" {
		t.Errorf("modbus-tcp device = %+v", tcp)
	}
	m := byID["meter-218231000114"]
	if m.Address != "218231000114" || m.Kind != KindPower || len(m.Read) != 7 {
		t.Errorf("dlt645 = %+v", m)
	}
	old := byID["old-meter-1"]
	if old.Address != "000000000042" || !reflect.DeepEqual(old.Read, DefaultRead(old.Driver)) || old.Kind != KindPower {
		t.Errorf("dlt645-1997 (unquoted address with leading zeros) = %+v", old)
	}
	w := byID["water-1"]
	if w.MeterType != 0x10 || w.DIOrder != "901F" || w.Address != "12345678901234" || w.Kind != KindWater {
		t.Errorf("cjt188 = %+v", w)
	}
	cnt := byID["well-pump-counter"]
	if cnt.Pin != "DI3" || cnt.Input != InputCounter || cnt.Debounce != 20*time.Millisecond ||
		!cnt.PerPulse.Equal(dec(t, "0.01")) || cnt.Quantity != "flow_m3" || !cnt.Start.Equal(dec(t, "1234.56")) ||
		cnt.Interval != time.Minute || cnt.Kind != KindWater {
		t.Errorf("pulse counter = %+v", cnt)
	}
	if d := byID["gate-door"]; d.Kind != KindGPIO || d.Input != InputDoor || d.Debounce != DefaultDebounce {
		t.Errorf("door = %+v", d)
	}
	if d := byID["bridge-traffic"]; d.Kind != KindTraffic || d.Interval != 5*time.Minute {
		t.Errorf("traffic = %+v", d)
	}
	if d := byID["zfy-001"]; d.Username != "zfy-001" || d.PasswordFile != "/etc/townlink/devices/zfy-001.pw" || d.Interval != 0 {
		t.Errorf("recorder = %+v", d)
	}
	if d := byID["kiosk-hall-1"]; d.WaitAlarm != 30*time.Minute || !reflect.DeepEqual(d.Outputs, []string{"display_msg"}) {
		t.Errorf("kiosk = %+v", d)
	}
}

func TestMinimalDefaults(t *testing.T) {
	c := mustLoad(t, "testdata/good/minimal.yaml")
	// Unquoted digits keep their literal text.
	if c.Gateway.County != "320583" || c.Gateway.Township != "320583104" {
		t.Errorf("codes = %q %q", c.Gateway.County, c.Gateway.Township)
	}
	want := Config{
		Gateway: Gateway{ID: "gw-1", County: "320583", Township: "320583104", DataDir: DefaultDataDir,
			LogLevel: slog.LevelInfo, StatusInterval: DefaultStatusInterval, Timezone: DefaultTimezone, TimeSyncAt: DefaultTimeSyncAt,
			Socket: DefaultDataDir + "/" + DefaultSocketName},
		Uplink: Uplink{Brokers: []string{"tcp://127.0.0.1:1883"}, Ack: AckBroker,
			Batch:  Batch{DefaultMaxRecords, DefaultMaxBytes, DefaultMaxDelay},
			Window: DefaultWindow, Backoff: Backoff{DefaultBackoffMin, DefaultBackoffMax}, DrainRate: DefaultDrainRate},
		Store:       Store{Profile: ProfileLowMemory},
		FieldBroker: FieldBroker{MaxPayload: DefaultMaxPayload},
	}
	if c.Gateway.Location == nil || c.Gateway.Location.String() != DefaultTimezone {
		t.Errorf("meter clock zone %v, want %s", c.Gateway.Location, DefaultTimezone)
	}
	c.Gateway.Location = nil
	c.Uplink.has = nil
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("minimal config\n got %+v\nwant %+v", *c, want)
	}
	if c.Uplink.TLS() || c.FieldBroker.Enabled() {
		t.Errorf("TLS or field broker on in a minimal config")
	}
}

func TestAnchorsAndExplicitZeros(t *testing.T) {
	c := mustLoad(t, "testdata/good/anchors.yaml")
	if c.Gateway.DataDir != "/srv/townlink" || c.Gateway.LogLevel != slog.LevelDebug {
		t.Errorf("gateway = %+v", c.Gateway)
	}
	// Explicit zeros are kept, not replaced by defaults.
	if c.Uplink.Batch.MaxDelay != 0 || c.Uplink.DrainRate != 0 {
		t.Errorf("explicit 0s lost: batch %+v drain %d", c.Uplink.Batch, c.Uplink.DrainRate)
	}
	if c.Uplink.Backoff != (Backoff{5 * time.Minute, 5 * time.Minute}) {
		t.Errorf("backoff = %+v", c.Uplink.Backoff)
	}
	if m := c.Lines[0].Mode(); m != (hardware.Mode{Baud: 1200, DataBits: 8, Parity: hardware.ParityEven, StopBits: 1}) {
		t.Errorf("bus-a mode = %v, want 1200 8E1 (dlt645-1997)", m)
	}
	a1, a2, tank := c.Devices[0], c.Devices[1], c.Devices[2]
	if a1.ID != "meter.A-1" || a1.Driver != DriverDLT645v97 || a1.Interval != time.Minute || a1.Timeout != 800*time.Millisecond ||
		a1.Retries != 0 || a1.Line != "bus-a" || a1.Address != "000000000001" {
		t.Errorf("merged device 1 = %+v", a1)
	}
	if a2.Retries != 1 || !reflect.DeepEqual(a2.Read, []string{"energy_kwh"}) {
		t.Errorf("merged device 2 (own keys win) = %+v", a2)
	}
	if tank.Host != "[fd00::5]:502" || tank.Unit != 255 {
		t.Errorf("tank = %+v", tank)
	}
	lvl := tank.Points[0]
	// The literal text is parsed, never a float64: 0.30000000000000004 stays exact.
	if mant, exp, ok := lvl.Scale.Decimal(); !ok || mant != 30000000000000004 || exp != -17 {
		t.Errorf("scale = %v (%d, %d)", lvl.Scale, mant, exp)
	}
	if !lvl.Offset.Equal(dec(t, "-1.5")) || lvl.Address != 16 {
		t.Errorf("level point = %+v", lvl)
	}
	if p := tank.Points[1]; p.Type != TypeUint64 || p.Order != OrderDCBA || p.Address != 65532 {
		t.Errorf("uint64 point = %+v", p)
	}
}

func TestRedacted(t *testing.T) {
	c := mustLoad(t, "testdata/good/full.yaml")
	r := c.Redacted()
	if r.Uplink.Key != RedactedMark || r.Uplink.PasswordFile != RedactedMark || r.FieldBroker.Key != RedactedMark {
		t.Errorf("uplink/field broker secrets not redacted: %+v %+v", r.Uplink, r.FieldBroker)
	}
	for _, d := range r.Devices {
		if d.PasswordFile != "" && d.PasswordFile != RedactedMark {
			t.Errorf("device %s password_file %q", d.ID, d.PasswordFile)
		}
	}
	if r.Devices[8].PasswordFile != RedactedMark {
		t.Errorf("recorder password_file not redacted")
	}
	// Public parts stay; unset secrets stay empty.
	if r.Uplink.Cert != c.Uplink.Cert || r.Uplink.CA != c.Uplink.CA || r.Devices[8].Username != "zfy-001" {
		t.Errorf("redacted too much")
	}
	if m := mustLoad(t, "testdata/good/minimal.yaml").Redacted(); m.Uplink.Key != "" || m.Uplink.PasswordFile != "" {
		t.Errorf("unset secrets became %q %q", m.Uplink.Key, m.Uplink.PasswordFile)
	}
	// The original is untouched and shares no slices.
	if c.Uplink.Key != "/etc/townlink/gw.key" || c.Devices[8].PasswordFile != "/etc/townlink/devices/zfy-001.pw" {
		t.Errorf("Redacted changed the original")
	}
	r.Devices[0].Points[0].Name = "changed"
	r.Uplink.Brokers[0] = "changed"
	r.Devices[0].Outputs[0] = "changed"
	if c.Devices[0].Points[0].Name == "changed" || c.Uplink.Brokers[0] == "changed" || c.Devices[0].Outputs[0] == "changed" {
		t.Errorf("Redacted copy shares slices with the original")
	}
	if s := fmt.Sprintf("%+v", r); strings.Contains(s, "gw.key") || strings.Contains(s, ".pw") {
		t.Errorf("redacted config still prints a secret path: %s", s)
	}
}

func TestByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
		str  string
	}{
		{"0", 0, "0"}, {"65536", 65536, "64KiB"}, {"1000", 1000, "1000"}, {"64KiB", 64 * KiB, "64KiB"},
		{"512MiB", 512 * MiB, "512MiB"}, {"2GiB", 2 * GiB, "2GiB"}, {"1.5GiB", 3 * GiB / 2, "1536MiB"},
		{"3TiB", 3 * TiB, "3TiB"}, {"10B", 10, "10"}, {"1 MiB", MiB, "1MiB"},
	} {
		got, err := ParseByteSize(tc.in)
		if err != nil || got != tc.want || got.String() != tc.str {
			t.Errorf("ParseByteSize(%q) = %d (%s), %v; want %d (%s)", tc.in, got, got, err, tc.want, tc.str)
		}
		if back, err := ParseByteSize(got.String()); err != nil || back != got {
			t.Errorf("round trip of %s: %d, %v", got, back, err)
		}
	}
	for _, bad := range []string{"", "GiB", "-1", "1.5", "0.1KiB", "2GB", "1e3", "1..2", "99999999999TiB", "12 parsecs"} {
		if v, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want error", bad, v)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(t.TempDir() + "/nope.yaml")
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("Load of a missing file: %v", err)
	}
	if errors.Is(err, ErrInvalid) {
		t.Errorf("a missing file is not an invalid config")
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{File: "a.yaml", Line: 14, Col: 7, Path: "devices[2].interval", Msg: "bad"}, "a.yaml:14:7: devices[2].interval: bad"},
		{Error{File: "a.yaml", Line: 3, Col: 1, Msg: "bad"}, "a.yaml:3:1: bad"},
		{Error{File: "a.yaml", Msg: "empty"}, "a.yaml: empty"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	es := Errors{{File: "f", Line: 1, Col: 2, Msg: "x"}, {File: "f", Line: 3, Col: 4, Msg: "y"}}
	if es.Error() != "f:1:2: x\nf:3:4: y" {
		t.Errorf("Errors.Error() = %q", es.Error())
	}
}

// TestTooManyErrors: problems are capped, sorted, and the cap is reported.
func TestTooManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("gateway: {id: gw-1, county: \"320583\", township: \"320583104\"}\nuplink: {brokers: [\"tcp://h:1\"]}\ndevices:\n")
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&b, "  - {id: d%d, driver: pulse, pin: gpiochip0:%d, interval: %d}\n", i, i, i+1)
	}
	_, err := Parse("many.yaml", []byte(b.String()))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("err = %v", err)
	}
	if len(es) != maxErrors+1 {
		t.Fatalf("%d problems reported, want %d + a summary", len(es), maxErrors)
	}
	for i, e := range es[:maxErrors] {
		if e.Line != 4+i || !strings.Contains(e.Msg, "is not a duration") {
			t.Errorf("problem %d = %v", i, e)
		}
	}
	if last := es[maxErrors]; !strings.Contains(last.Msg, "10 more not shown") || last.Line != 24 {
		t.Errorf("summary = %v", last)
	}
}

func TestIntegerForms(t *testing.T) {
	for in, want := range map[string]int64{"0x10": 16, "0X1f": 31, "0o20": 16, "0b101": 5, "010": 10, "-3": -3, "+7": 7, "0": 0} {
		if got, ok := parseInt(in); !ok || got != want {
			t.Errorf("parseInt(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "0x", "1.0", "1e3", "--1", "0x-1", "ten", "1_000"} {
		if got, ok := parseInt(bad); ok {
			t.Errorf("parseInt(%q) = %d, want failure", bad, got)
		}
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"name", "port", "baud", "data_bits", "parity", "stop_bits", "gap"}
	for in, want := range map[string]string{"buad": "baud", "Baud": "baud", "prity": "parity", "stopbits": "stop_bits", "xyz": "", "gpa": "gap", "speed": ""} {
		if got := suggest(in, keys); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

// clearKeys drops the record of which keys were written, which differs
// between a hand-written file and YAML's output.
func clearKeys(c *Config) {
	c.Uplink.has = nil
	// A written file states every value: nothing is derived when it is
	// read back. The zone is compared by name.
	c.Derived = nil
	if c.Gateway.Location != nil && c.Gateway.Location.String() == c.Gateway.Timezone {
		c.Gateway.Location = nil
	}
	for i := range c.Lines {
		c.Lines[i].has = nil
	}
	for i := range c.Devices {
		c.Devices[i].has = nil
	}
	c.Rules = append([]Rule(nil), c.Rules...) // Redacted shares the slice
	for i := range c.Rules {
		c.Rules[i].node, c.Rules[i].Program = nil, nil // positions and compiled code differ
	}
}

// TestYAMLRoundTrip: YAML() writes every sample so that Parse reads back
// the same Config.
func TestYAMLRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/good/*.yaml")
	for _, f := range files {
		c := mustLoad(t, f)
		for _, cc := range []*Config{c, c.Redacted()} {
			out, err := cc.YAML()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse("out.yaml", out)
			if err != nil {
				t.Fatalf("%s: YAML() output does not parse:\n%v\n%s", f, err, out)
			}
			clearKeys(cc)
			clearKeys(back)
			if !reflect.DeepEqual(cc, back) {
				t.Errorf("%s: round trip differs\n got %+v\nwant %+v\n%s", f, back, cc, out)
			}
		}
	}
	out, _ := mustLoad(t, "testdata/good/full.yaml").Redacted().YAML()
	if strings.Contains(string(out), "gw.key") || strings.Contains(string(out), ".pw") {
		t.Errorf("redacted YAML shows a secret path:\n%s", out)
	}
}

func TestNextTimeSyncIsTheQuietHourInTheGatewayZone(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	g := Gateway{TimeSyncAt: "03:30", Location: sh}
	// 20:00 UTC is 04:00 the next day in Shanghai: the next 03:30 is a day later.
	now := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	want := time.Date(2026, 12, 8, 3, 30, 0, 0, sh)
	if got := g.NextTimeSync(now); !got.Equal(want) {
		t.Errorf("NextTimeSync(%v) = %v, want %v", now, got, want)
	}
	// 19:00 UTC is 03:00 in Shanghai: half an hour to go.
	now = time.Date(2026, 12, 6, 19, 0, 0, 0, time.UTC)
	if got := g.NextTimeSync(now); got.Sub(now) != 30*time.Minute {
		t.Errorf("NextTimeSync(%v) = %v, want 30 minutes later", now, got)
	}
}
