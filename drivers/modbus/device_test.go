package modbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serialsim"
)

// rtu returns the RTU frame for pdu to unit.
func rtu(t *testing.T, unit byte, pduHex string) []byte {
	t.Helper()
	return AppendCRC(append([]byte{unit}, unhex(t, pduHex)...))
}

func dec(t *testing.T, s string) drivers.Value {
	t.Helper()
	v, err := drivers.ParseDecimal(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustNew(t *testing.T, c Config, tr Transport) *Device {
	t.Helper()
	d, err := New(c, tr)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func wantValues(t *testing.T, got drivers.Reading, want map[string]drivers.Value) {
	t.Helper()
	if len(got.Values) != len(want) {
		t.Errorf("got %d values %v, want %d", len(got.Values), got.Values, len(want))
	}
	for k, w := range want {
		if g, ok := got.Values[k]; !ok || !g.Equal(w) || g.Kind() != w.Kind() {
			t.Errorf("%s = %v (kind %d), want %v (kind %d)", k, g, g.Kind(), w, w.Kind())
		}
	}
}

func meterConfig(t *testing.T) Config {
	return Config{
		Device: "meter1", Unit: 1, Class: drivers.Telemetry,
		Points: []Point{
			// Deliberately out of order: the plan sorts them.
			{Name: "flow_f", Table: Holding, Address: 10, Type: Float32},
			{Name: "temp_c", Table: Holding, Address: 0, Type: Int16, Scale: dec(t, "0.1")},
			{Name: "raw", Table: Holding, Address: 1},
			{Name: "energy_kwh", Table: Holding, Address: 2, Type: Uint32, Order: CDAB, Scale: dec(t, "0.01"), Offset: dec(t, "1000")},
			{Name: "volt_v", Table: Input, Address: 0, Scale: dec(t, "0.1")},
			{Name: "relay", Table: Coil, Address: 0},
			{Name: "alarm", Table: Coil, Address: 1, Type: Bool},
			{Name: "door", Table: Discrete, Address: 5},
		},
	}
}

func TestPollGroupsScalesAndDecodes(t *testing.T) {
	port := serialsim.NewScript(t,
		// holding 0..3 in one request: temp 253 → 25.3; raw 7; energy CDAB 0x00012345.
		serialsim.Step{Expect: rtu(t, 1, "03 00 00 00 04"), Reply: rtu(t, 1, "03 08 00 FD 00 07 23 45 00 01")},
		// holding 10..11: float32 12.5.
		serialsim.Step{Expect: rtu(t, 1, "03 00 0A 00 02"), Reply: rtu(t, 1, "03 04 41 48 00 00")},
		serialsim.Step{Expect: rtu(t, 1, "04 00 00 00 01"), Reply: rtu(t, 1, "04 02 09 01")},
		// coils 0..1: 1 0 → relay on, alarm off.
		serialsim.Step{Expect: rtu(t, 1, "01 00 00 00 02"), Reply: rtu(t, 1, "01 01 01")},
		serialsim.Step{Expect: rtu(t, 1, "02 00 05 00 01"), Reply: rtu(t, 1, "02 01 01")},
	)
	d := mustNew(t, meterConfig(t), NewRTU(port, 200*time.Millisecond, 0))
	if n := len(d.Requests()); n != 5 {
		t.Fatalf("%d requests planned: %v", n, d.Requests())
	}
	got, err := d.Poll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Device != "meter1" || got[0].Class != drivers.Telemetry {
		t.Fatalf("readings %+v", got)
	}
	wantValues(t, got[0], map[string]drivers.Value{
		"temp_c":     drivers.Dec(253, -1),
		"raw":        drivers.Int(7),
		"energy_kwh": dec(t, "1745.65"), // 0x00012345 = 74565 × 0.01 + 1000
		"flow_f":     drivers.Float(12.5),
		"volt_v":     dec(t, "230.5"),
		"relay":      drivers.Bool(true),
		"alarm":      drivers.Bool(false),
		"door":       drivers.Bool(true),
	})
	if s := got[0].Values["temp_c"].String(); s != "25.3" {
		t.Errorf("temp_c prints %q", s)
	}
}

func TestPollNegativeScaled(t *testing.T) {
	port := serialsim.NewScript(t,
		serialsim.Step{Expect: rtu(t, 7, "03 00 00 00 02"), Reply: rtu(t, 7, "03 04 FF FB FF FF")})
	d := mustNew(t, Config{Device: "m", Unit: 7, Points: []Point{
		{Name: "p_kw", Address: 0, Type: Int16, Scale: dec(t, "0.01")},
		{Name: "n", Address: 1, Type: Int16},
	}}, NewRTU(port, time.Second, 0))
	got, err := d.Poll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, got[0], map[string]drivers.Value{"p_kw": dec(t, "-0.05"), "n": drivers.Int(-1)})
	if s := got[0].Values["p_kw"].String(); s != "-0.05" {
		t.Errorf("p_kw prints %q", s)
	}
}

func TestPlan(t *testing.T) {
	var pts []Point
	for i := range 130 {
		pts = append(pts, Point{Name: "r" + string(rune('A'+i/26)) + string(rune('a'+i%26)), Address: uint16(i)})
	}
	pts = append(pts,
		Point{Name: "f", Address: 200, Type: Float32}, // gap of 70 from the last
		Point{Name: "c0", Table: Coil, Address: 0}, Point{Name: "c1999", Table: Coil, Address: 1999}, Point{Name: "c2000", Table: Coil, Address: 2000},
		Point{Name: "last", Address: 65534, Type: Uint32},
	)
	want := []Request{ReadHoldingRegisters(0, 125), ReadHoldingRegisters(125, 5), ReadHoldingRegisters(200, 2),
		ReadHoldingRegisters(65534, 2), ReadCoils(0, 1), ReadCoils(1999, 2)}
	d := mustNew(t, Config{Device: "big", Unit: 1, Points: pts}, NewRTU(nil, 0, 0))
	if got := d.Requests(); !equalRequests(got, want) {
		t.Errorf("MaxGap 0:\n got %v\nwant %v", got, want)
	}
	// With MaxGap 70 the float joins the second request; coils 0 and
	// 1999 are 1998 apart, too far for gap 70.
	want = []Request{ReadHoldingRegisters(0, 125), ReadHoldingRegisters(125, 77),
		ReadHoldingRegisters(65534, 2), ReadCoils(0, 1), ReadCoils(1999, 2)}
	d = mustNew(t, Config{Device: "big", Unit: 1, Points: pts, MaxGap: 70}, NewRTU(nil, 0, 0))
	if got := d.Requests(); !equalRequests(got, want) {
		t.Errorf("MaxGap 70:\n got %v\nwant %v", got, want)
	}
	// Overlapping points (one register read two ways) share a request.
	d = mustNew(t, Config{Device: "o", Unit: 1, Points: []Point{
		{Name: "u32", Address: 4, Type: Uint32}, {Name: "hi", Address: 4}, {Name: "lo", Address: 5}}}, NewRTU(nil, 0, 0))
	if got := d.Requests(); !equalRequests(got, []Request{ReadHoldingRegisters(4, 2)}) {
		t.Errorf("overlap: %v", got)
	}
}

func equalRequests(a, b []Request) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Function != b[i].Function || a[i].Address != b[i].Address || a[i].Quantity != b[i].Quantity {
			return false
		}
	}
	return true
}

func TestPollExceptionKeepsTheRest(t *testing.T) {
	port := serialsim.NewScript(t,
		serialsim.Step{Expect: rtu(t, 1, "03 00 00 00 04"), Reply: rtu(t, 1, "83 02")},
		serialsim.Step{Expect: rtu(t, 1, "03 00 0A 00 02"), Reply: rtu(t, 1, "03 04 41 48 00 00")},
		serialsim.Step{Expect: rtu(t, 1, "04 00 00 00 01"), Reply: rtu(t, 1, "04 02 09 01")},
		serialsim.Step{Expect: rtu(t, 1, "01 00 00 00 02"), Reply: rtu(t, 1, "81 04")},
		serialsim.Step{Expect: rtu(t, 1, "02 00 05 00 01"), Reply: rtu(t, 1, "02 01 00")},
	)
	d := mustNew(t, meterConfig(t), NewRTU(port, 200*time.Millisecond, 3)) // exceptions are not retried
	got, err := d.Poll(context.Background(), nil)
	if len(got) != 1 {
		t.Fatalf("readings %+v", got)
	}
	wantValues(t, got[0], map[string]drivers.Value{"flow_f": drivers.Float(12.5), "volt_v": dec(t, "230.5"), "door": drivers.Bool(false)})
	var ex *ExceptionError
	if !errors.As(err, &ex) || ex.Unit != 1 || ex.Function != 3 || ex.Code != 2 {
		t.Fatalf("err = %v", err)
	}
	if !errors.Is(err, ErrIllegalDataAddress) || !errors.Is(err, ErrServerDeviceFailure) {
		t.Fatalf("both exceptions should be in %v", err)
	}
	for _, s := range []string{"modbus meter1 unit 1 holding 0..3", "illegal data address", "coil 0..1", "server device failure"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
}

func TestPollSilentDevice(t *testing.T) {
	req := rtu(t, 1, "03 00 00 00 04")
	port := serialsim.NewScript(t, serialsim.Step{Expect: req}, serialsim.Step{Expect: req}) // one retry, both silent
	d := mustNew(t, meterConfig(t), NewRTU(port, 50*time.Millisecond, 1))
	got, err := d.Poll(context.Background(), nil)
	if len(got) != 0 {
		t.Fatalf("readings from a silent device: %+v", got)
	}
	if !errors.Is(err, drivers.ErrTimeout) || !strings.Contains(err.Error(), "holding 0..3") || !strings.Contains(err.Error(), "4 more requests skipped") {
		t.Fatalf("err = %v", err)
	}
}

func TestRTURetriesBadCRCThenSucceeds(t *testing.T) {
	req := rtu(t, 9, "03 00 00 00 01")
	bad := rtu(t, 9, "03 02 00 2A")
	bad[len(bad)-1] ^= 0xFF
	port := serialsim.NewScript(t,
		serialsim.Step{Expect: req, Reply: bad},
		serialsim.Step{Expect: req, Reply: rtu(t, 9, "03 02 00 2A")})
	rep, err := Do(context.Background(), NewRTU(port, 200*time.Millisecond, 1), 9, ReadHoldingRegisters(0, 1))
	if err != nil || rep.Registers[0] != 42 {
		t.Fatalf("%v %v", rep, err)
	}
}

func TestRTUErrors(t *testing.T) {
	req := rtu(t, 9, "03 00 00 00 01")
	bad := rtu(t, 9, "03 02 00 2A")
	bad[len(bad)-2] ^= 0x01
	cases := []struct {
		name  string
		reply []byte
		want  error
	}{
		{"bad crc", bad, ErrCRC},
		{"wrong unit", rtu(t, 10, "03 02 00 2A"), ErrWrongUnit},
		{"wrong function", rtu(t, 9, "04 02 00 2A"), ErrFunction},
		{"cut off", rtu(t, 9, "03 02 00 2A")[:4], drivers.ErrFrame},
		{"silent", nil, drivers.ErrTimeout},
	}
	for _, c := range cases {
		port := serialsim.NewScript(t, serialsim.Step{Expect: req, Reply: c.reply})
		d := mustNew(t, Config{Device: "d9", Unit: 9, Points: []Point{{Name: "x"}}}, NewRTU(port, 50*time.Millisecond, 0))
		got, err := d.Poll(context.Background(), nil)
		if len(got) != 0 || !errors.Is(err, c.want) {
			t.Errorf("%s: %v, err = %v, want %v", c.name, got, err, c.want)
		}
		if c.want != drivers.ErrTimeout && !errors.Is(err, drivers.ErrFrame) {
			t.Errorf("%s: %v is not drivers.ErrFrame", c.name, err)
		}
		if c.name == "bad crc" && !strings.Contains(err.Error(), "crc") {
			t.Errorf("bad crc: %v", err)
		}
		if !strings.Contains(err.Error(), "modbus d9 unit 9 holding 0..0") {
			t.Errorf("%s: error does not name the registers: %v", c.name, err)
		}
	}
}

func TestPollContextCancelled(t *testing.T) {
	port := serialsim.NewScript(t)
	d := mustNew(t, meterConfig(t), NewRTU(port, time.Second, 0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, err := d.Poll(ctx, nil)
	if len(got) != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("%v %v", got, err)
	}
}

func TestBroadcast(t *testing.T) {
	port := serialsim.NewScript(t, serialsim.Step{Expect: rtu(t, 0, "06 00 01 00 03")})
	tr := NewRTU(port, time.Second, 0)
	tr.SetBroadcastDelay(time.Millisecond)
	rep, err := Do(context.Background(), tr, 0, WriteSingleRegister(1, 3))
	if err != nil || rep.Function != 0 {
		t.Fatalf("broadcast write: %+v %v", rep, err)
	}
	if _, err := Do(context.Background(), tr, 0, ReadHoldingRegisters(0, 1)); !errors.Is(err, ErrBroadcast) {
		t.Fatalf("broadcast read: %v", err)
	}
}

func TestWrites(t *testing.T) {
	port := serialsim.NewScript(t,
		serialsim.Step{Expect: rtu(t, 1, "05 00 AC FF 00"), Reply: rtu(t, 1, "05 00 AC FF 00")},
		serialsim.Step{Expect: rtu(t, 1, "0F 00 13 00 0A 02 CD 01"), Reply: rtu(t, 1, "0F 00 13 00 0A")},
		serialsim.Step{Expect: rtu(t, 1, "06 00 01 00 03"), Reply: rtu(t, 1, "06 00 01 00 03")},
		serialsim.Step{Expect: rtu(t, 1, "10 00 01 00 02 04 00 0A 01 02"), Reply: rtu(t, 1, "10 00 01 00 02")},
		// WritePoint temp_c = -12.3 with scale 0.1 → int16 -123 = FF85, FC 6.
		serialsim.Step{Expect: rtu(t, 1, "06 00 00 FF 85"), Reply: rtu(t, 1, "06 00 00 FF 85")},
		// WritePoint energy_kwh = 1745.65 → (1745.65-1000)/0.01 = 74565 = 0x00012345, CDAB, FC 16.
		serialsim.Step{Expect: rtu(t, 1, "10 00 02 00 02 04 23 45 00 01"), Reply: rtu(t, 1, "10 00 02 00 02")},
		serialsim.Step{Expect: rtu(t, 1, "05 00 00 00 00"), Reply: rtu(t, 1, "05 00 00 00 00")},
		// An echo that differs is an error.
		serialsim.Step{Expect: rtu(t, 1, "06 00 01 00 04"), Reply: rtu(t, 1, "06 00 01 00 05")},
	)
	d := mustNew(t, meterConfig(t), NewRTU(port, 200*time.Millisecond, 0))
	ctx := context.Background()
	steps := []error{
		d.WriteCoil(ctx, 172, true),
		d.WriteCoils(ctx, 19, bitsOf("1011001110")),
		d.WriteRegister(ctx, 1, 3),
		d.WriteRegisters(ctx, 1, []uint16{10, 258}),
		d.WritePoint(ctx, "temp_c", dec(t, "-12.3")),
		d.WritePoint(ctx, "energy_kwh", dec(t, "1745.65")),
		d.WritePoint(ctx, "relay", drivers.Bool(false)),
	}
	for i, err := range steps {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if err := d.WriteRegister(ctx, 1, 4); !errors.Is(err, ErrEcho) || !strings.Contains(err.Error(), "meter1 unit 1 write holding 1..1") {
		t.Errorf("bad echo: %v", err)
	}
	// Refused before any I/O.
	for _, c := range []struct {
		name string
		v    drivers.Value
	}{
		{"temp_c", dec(t, "0.05")},             // not a multiple of 0.1
		{"temp_c", dec(t, "4000")},             // 40000 does not fit int16
		{"volt_v", dec(t, "230")},              // input registers are read-only
		{"door", drivers.Bool(true)},           // discrete inputs too
		{"relay", drivers.Int(1)},              // a coil takes a bool
		{"nope", drivers.Int(1)},               // no such point
		{"raw", drivers.Text("12")},            // not a number
		{"raw", drivers.Int(-1)},               // uint16
		{"raw", drivers.Dec(1, 1<<31-1)},       // 10^(2^31): refused before computing it
		{"temp_c", drivers.Dec(1, -(1 << 31))}, // and its inverse
		{"temp_c", drivers.Dec(1, MaxWriteExp+1)},
	} {
		// c.v is not formatted: 10^(2^31) would be written out digit by digit.
		if err := d.WritePoint(ctx, c.name, c.v); !errors.Is(err, ErrNotWritable) {
			t.Errorf("WritePoint(%s, kind %v): %v", c.name, c.v.Kind(), err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := meterConfig(t)
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	mod := func(f func(c *Config)) Config {
		c := meterConfig(t)
		c.Points = append([]Point(nil), c.Points...)
		f(&c)
		return c
	}
	bad := map[string]Config{
		"no device":    mod(func(c *Config) { c.Device = "" }),
		"unit 0":       mod(func(c *Config) { c.Unit = 0 }),
		"unit 248":     mod(func(c *Config) { c.Unit = 248 }),
		"no points":    mod(func(c *Config) { c.Points = nil }),
		"dup name":     mod(func(c *Config) { c.Points[1].Name = c.Points[0].Name }),
		"empty name":   mod(func(c *Config) { c.Points[0].Name = "" }),
		"bad table":    mod(func(c *Config) { c.Points[0].Table = 9 }),
		"bad type":     mod(func(c *Config) { c.Points[0].Type = 99 }),
		"bad order":    mod(func(c *Config) { c.Points[0].Order = 4 }),
		"coil float":   mod(func(c *Config) { c.Points[5].Type = Float32 }),
		"coil scale":   mod(func(c *Config) { c.Points[5].Scale = drivers.Int(2) }),
		"bool holding": mod(func(c *Config) { c.Points[0].Type = Bool }),
		"past 65535":   mod(func(c *Config) { c.Points[0].Address = 65535 }),
		"float scale":  mod(func(c *Config) { c.Points[0].Scale = drivers.Float(0.1) }),
		"zero scale":   mod(func(c *Config) { c.Points[1].Scale = drivers.Int(0) }),
		"bad class":    mod(func(c *Config) { c.Class = 9 }),
	}
	for name, c := range bad {
		err := c.Validate()
		if !errors.Is(err, drivers.ErrConfig) {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, err := New(c, NewRTU(nil, 0, 0)); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	if _, err := New(good, nil); !errors.Is(err, drivers.ErrConfig) {
		t.Errorf("nil transport: %v", err)
	}
	tcpUnit := meterConfig(t)
	tcpUnit.Unit = 255
	if err := tcpUnit.Validate(); err != nil {
		t.Errorf("unit 255: %v", err)
	}
}

func TestParse(t *testing.T) {
	for s, want := range map[string]Table{"holding": Holding, "HR": Holding, "input": Input, "coil": Coil, "di": Discrete} {
		if got, err := ParseTable(s); err != nil || got != want {
			t.Errorf("ParseTable(%q) = %v %v", s, got, err)
		}
	}
	for s, want := range map[string]Type{"int16": Int16, "UINT32": Uint32, "float": Float32, "float64": Float64, "bool": Bool, "uint16": Uint16} {
		if got, err := ParseType(s); err != nil || got != want {
			t.Errorf("ParseType(%q) = %v %v", s, got, err)
		}
	}
	for s, want := range map[string]Order{"ABCD": ABCD, "cdab": CDAB, "BADC": BADC, "DcBa": DCBA} {
		if got, err := ParseOrder(s); err != nil || got != want {
			t.Errorf("ParseOrder(%q) = %v %v", s, got, err)
		}
	}
	for _, err := range []error{
		func() error { _, err := ParseTable("register"); return err }(),
		func() error { _, err := ParseType("int8"); return err }(),
		func() error { _, err := ParseOrder("big"); return err }(),
	} {
		if !errors.Is(err, drivers.ErrConfig) {
			t.Errorf("parse error %v", err)
		}
	}
	for ty := Uint16; ty <= Bool; ty++ {
		if got, err := ParseType(ty.String()); err != nil || got != ty {
			t.Errorf("round trip %v", ty)
		}
	}
}

// The shortest workable timeout follows the longest read's frames at the
// line's speed: one holding register at 9600 8N1 is 8 + 7 bytes on the
// wire (about 15.6 ms) plus Turnaround; 125 registers are 8 + 255 bytes.
func TestMinTimeout(t *testing.T) {
	m := hardware.Mode{Baud: 9600}
	one := Config{Device: "d", Unit: 1, Points: []Point{{Name: "a", Table: Holding, Address: 0, Type: Uint16}}}
	if got, want := one.MinTimeout(m), m.WireTime(8)+m.WireTime(7)+Turnaround; got != want || got < 65*time.Millisecond {
		t.Errorf("one register: %v, want %v", got, want)
	}
	big := Config{Device: "d", Unit: 1}
	for i := range 125 {
		big.Points = append(big.Points, Point{Name: fmt.Sprintf("r%d", i), Table: Holding, Address: uint16(i), Type: Uint16})
	}
	if got, want := big.MinTimeout(m), m.WireTime(8+255)+Turnaround; got != want {
		t.Errorf("125 registers: %v, want %v", got, want)
	}
	if slow := one.MinTimeout(hardware.Mode{Baud: 1200}); slow <= one.MinTimeout(m) {
		t.Errorf("1200 bit/s (%v) is not slower than 9600 (%v)", slow, one.MinTimeout(m))
	}
}
