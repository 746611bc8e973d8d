package cjt188

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/hardware/serialsim"
	"github.com/townlink/townlink/internal/testkit"
)

const testAddr = "00201510270588"

var (
	cst      = time.FixedZone("CST", 8*3600)
	fixedNow = time.Date(2017, 1, 9, 9, 19, 0, 0, time.UTC) // 17:19:00 at UTC+8
)

func frame(t testing.TB, pre int, typ byte, addr string, control byte, data ...byte) []byte {
	t.Helper()
	a, err := ParseAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	return Encode(Frame{Preamble: pre, Type: typ, Addr: a, Control: control, Data: data})
}

func readReq(t testing.TB, ser byte) []byte {
	return frame(t, 0, TypeColdWater, testAddr, FuncRead, 0x90, 0x1F, ser)
}

// record builds a 901F reply DATA: flow and settlement flow BCD low byte
// first with their units, the clock and ST.
func record(ser byte, flow [4]byte, u1 byte, settle [4]byte, u2 byte, clock [7]byte, st0, st1 byte) []byte {
	d := []byte{0x90, 0x1F, ser}
	d = append(d, flow[:]...)
	d = append(d, u1)
	d = append(d, settle[:]...)
	d = append(d, u2)
	d = append(d, clock[:]...)
	return append(d, st0, st1)
}

var noClock = [7]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}

func okReply(t testing.TB, data ...byte) []byte {
	return frame(t, 2, TypeColdWater, testAddr, 0x81, data...)
}

func newMeter(t *testing.T, c Config, steps ...serialsim.Step) *Meter {
	t.Helper()
	if c.Device == "" {
		c.Device = "w1"
	}
	if c.Address == "" {
		c.Address = testAddr
	}
	if c.Timeout == 0 {
		c.Timeout = 100 * time.Millisecond
	}
	if c.Preamble == 0 {
		c.Preamble = -1
	}
	if c.Location == nil {
		c.Location = cst
	}
	if c.Now == nil {
		c.Now = func() time.Time { return fixedNow }
	}
	m, err := New(c, serialsim.NewScript(t, steps...))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPollPublicExchange(t *testing.T) {
	// frames.json #32 (request, SER 01) and #33 (reply). SER starts at 00,
	// so a first poll that times out uses 00 and the next one 01.
	req := testkit.Unhex(t, "68 10 88 05 27 10 15 20 00 01 03 90 1F 01 25 16")
	reply := testkit.Unhex(t, "68 10 88 05 27 10 15 20 00 81 16 90 1F 01 00 00 00 00 2C 00 00 00 00 2C 06 20 17 09 01 17 20 00 00 8E 16")
	m := newMeter(t, Config{Retries: 0, Class: drivers.Telemetry},
		serialsim.Step{Expect: readReq(t, 0x00)},
		serialsim.Step{Expect: req, Reply: reply})
	rs, err := m.Poll(context.Background(), nil)
	if !errors.Is(err, drivers.ErrTimeout) || len(rs) != 0 {
		t.Fatalf("first poll = %v, %v; want ErrTimeout", rs, err)
	}
	rs, err = m.Poll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := testkit.OnlyReading(t, rs)
	if r.Device != "w1" || !r.Time.Equal(fixedNow) {
		t.Errorf("reading %+v", r)
	}
	// meter 2017-01-09 17:20:06 +08:00, gateway 17:19:00 +08:00 → +66 s
	testkit.WantValues(t, r.Values, map[string]drivers.Value{
		PointFlow:        drivers.Dec(0, -2),
		PointSettleFlow:  drivers.Dec(0, -2),
		PointValve:       drivers.Text("open"),
		PointBatteryLow:  drivers.Bool(false),
		PointStatusRaw:   drivers.Int(0),
		PointMeterTime:   drivers.Text("2017-01-09T17:20:06+08:00"),
		PointClockOffset: drivers.Int(66),
	})
}

func TestPollValuesAndStatus(t *testing.T) {
	for _, c := range []struct {
		name          string
		flow          [4]byte
		u1            byte
		st0, st1      byte
		flowM3, valve string
		battery       bool
		raw           int64
	}{
		{"closed, battery low", [4]byte{0x12, 0x34, 0x56, 0x78}, UnitCubicMetres, 0x05, 0x00, "785634.12", "closed", true, 5},
		{"fault, vendor bits", [4]byte{0x00, 0x00, 0x01, 0x00}, UnitCubicMetres, 0x83, 0x12, "100.00", "fault", false, 0x1283},
		{"litres", [4]byte{0x67, 0x45, 0x23, 0x01}, UnitLitre, 0x00, 0x00, "12.34567", "open", false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := record(0, c.flow, c.u1, [4]byte{0x00, 0x00, 0x00, 0x00}, UnitCubicMetres, noClock, c.st0, c.st1)
			m := newMeter(t, Config{}, serialsim.Step{Expect: readReq(t, 0), Reply: okReply(t, data...)})
			rs, err := m.Poll(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			flow, err := drivers.ParseDecimal(c.flowM3)
			if err != nil {
				t.Fatal(err)
			}
			testkit.WantValues(t, testkit.OnlyReading(t, rs).Values, map[string]drivers.Value{
				PointFlow:       flow,
				PointSettleFlow: drivers.Dec(0, -2),
				PointValve:      drivers.Text(c.valve),
				PointBatteryLow: drivers.Bool(c.battery),
				PointStatusRaw:  drivers.Int(c.raw),
			})
		})
	}
}

func TestHeatUnitIsRejectedCleanly(t *testing.T) {
	data := record(0, [4]byte{0x00, 0x10, 0x00, 0x00}, 0x05, [4]byte{0x00, 0x10, 0x00, 0x00}, UnitCubicMetres, noClock, 0x00, 0x00)
	m := newMeter(t, Config{}, serialsim.Step{Expect: readReq(t, 0), Reply: okReply(t, data...)})
	rs, err := m.Poll(context.Background(), nil)
	if !errors.Is(err, ErrUnit) || !strings.Contains(err.Error(), "kWh") || !strings.Contains(err.Error(), PointFlow) {
		t.Fatalf("Poll error %v, want ErrUnit naming kWh and flow_m3", err)
	}
	testkit.WantValues(t, testkit.OnlyReading(t, rs).Values, map[string]drivers.Value{
		PointSettleFlow: drivers.Dec(1000, -2),
		PointValve:      drivers.Text("open"),
		PointBatteryLow: drivers.Bool(false),
		PointStatusRaw:  drivers.Int(0),
	})
}

func TestLateReplyWithOldSERIsDiscarded(t *testing.T) {
	late := okReply(t, record(0x00, [4]byte{0x00, 0x01, 0x00, 0x00}, UnitCubicMetres, [4]byte{}, UnitCubicMetres, noClock, 0, 0)...)
	fresh := okReply(t, record(0x01, [4]byte{0x00, 0x02, 0x00, 0x00}, UnitCubicMetres, [4]byte{}, UnitCubicMetres, noClock, 0, 0)...)
	t.Run("then the right one", func(t *testing.T) {
		// SER 00 times out; its reply arrives during the retry (SER 01),
		// just before the right one.
		m := newMeter(t, Config{Retries: 1},
			serialsim.Step{Expect: readReq(t, 0x00)},
			serialsim.Step{Expect: readReq(t, 0x01), Reply: cat(late, fresh)})
		rs, err := m.Poll(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := testkit.OnlyReading(t, rs).Values[PointFlow]; !got.Equal(drivers.Dec(200, -2)) {
			t.Errorf("flow %s, want 2.00 from the SER 01 reply", got)
		}
	})
	t.Run("only the late one", func(t *testing.T) {
		m := newMeter(t, Config{Retries: 0},
			serialsim.Step{Expect: readReq(t, 0x00)},
			serialsim.Step{Expect: readReq(t, 0x01), Reply: late})
		if _, err := m.Poll(context.Background(), nil); !errors.Is(err, drivers.ErrTimeout) {
			t.Fatalf("first poll: %v", err)
		}
		rs, err := m.Poll(context.Background(), nil)
		if !errors.Is(err, ErrLateReply) || len(rs) != 0 {
			t.Fatalf("Poll = %v, %v; want ErrLateReply", rs, err)
		}
	})
}

func TestNoiseEchoAndPreambleBeforeReply(t *testing.T) {
	req := readReq(t, 0)
	reply := okReply(t, record(0, [4]byte{0x99, 0x00, 0x00, 0x00}, UnitCubicMetres, [4]byte{}, UnitCubicMetres, noClock, 0, 0)...)
	m := newMeter(t, Config{}, serialsim.Step{Expect: req,
		Reply: cat([]byte{0x00, 0x68, 0x10, 0xFF, 0x68}, req, []byte{0xFE, 0xFE, 0xFE, 0xFE}, reply)})
	rs, err := m.Poll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := testkit.OnlyReading(t, rs).Values[PointFlow]; !got.Equal(drivers.Dec(99, -2)) {
		t.Errorf("flow %s, want 0.99", got)
	}
}

func TestDIOrder(t *testing.T) {
	// Sends 1F 90; the meter answers 90 1F (one public Java tool sees this).
	m := newMeter(t, Config{DIOrder: "1f90"},
		serialsim.Step{Expect: frame(t, 0, TypeColdWater, testAddr, FuncRead, 0x1F, 0x90, 0x00),
			Reply: okReply(t, record(0, [4]byte{0x01}, UnitCubicMetres, [4]byte{}, UnitCubicMetres, noClock, 0, 0)...)},
		// and 1F 90 back, as in frames.json #41
		serialsim.Step{Expect: frame(t, 0, TypeColdWater, testAddr, FuncRead, 0x1F, 0x90, 0x01),
			Reply: okReply(t, append([]byte{0x1F, 0x90}, record(1, [4]byte{0x02}, UnitCubicMetres, [4]byte{}, UnitCubicMetres, noClock, 0, 0)[2:]...)...)})
	for i, want := range []drivers.Value{drivers.Dec(1, -2), drivers.Dec(2, -2)} {
		rs, err := m.Poll(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := testkit.OnlyReading(t, rs).Values[PointFlow]; !got.Equal(want) {
			t.Errorf("poll %d: flow %s, want %s", i, got, want)
		}
	}
}

func TestAbnormalReply(t *testing.T) {
	m := newMeter(t, Config{Retries: 2}, // not retried
		serialsim.Step{Expect: readReq(t, 0), Reply: frame(t, 0, TypeColdWater, testAddr, 0xC1, 0x90, 0x1F, 0x00, 0x04)})
	rs, err := m.Poll(context.Background(), nil)
	var ab *AbnormalError
	if !errors.As(err, &ab) || ab.Control != 0xC1 || ab.Status != 0x04 || !errors.Is(err, ErrAbnormal) || len(rs) != 0 {
		t.Fatalf("Poll = %v, %v; want AbnormalError{C1, 04}", rs, err)
	}
}

func TestWrongAddressAndRetries(t *testing.T) {
	data := record(0, [4]byte{0x05}, UnitCubicMetres, [4]byte{}, UnitCubicMetres, noClock, 0, 0)
	wrong := frame(t, 0, TypeColdWater, "00201510270589", 0x81, data...)
	t.Run("wrong address", func(t *testing.T) {
		m := newMeter(t, Config{Retries: 0}, serialsim.Step{Expect: readReq(t, 0), Reply: wrong})
		_, err := m.Poll(context.Background(), nil)
		if !errors.Is(err, ErrWrongAddress) || !strings.Contains(err.Error(), "00201510270589") {
			t.Fatalf("Poll error %v, want ErrWrongAddress naming the other meter", err)
		}
	})
	t.Run("timeout, bad checksum, then good", func(t *testing.T) {
		good := okReply(t, record(2, [4]byte{0x05}, UnitCubicMetres, [4]byte{}, UnitCubicMetres, noClock, 0, 0)...)
		bad := okReply(t, record(1, [4]byte{0x05}, UnitCubicMetres, [4]byte{}, UnitCubicMetres, noClock, 0, 0)...)
		bad[len(bad)-2] ^= 0x01
		m := newMeter(t, Config{Retries: 2},
			serialsim.Step{Expect: readReq(t, 0)},
			serialsim.Step{Expect: readReq(t, 1), Reply: bad},
			serialsim.Step{Expect: readReq(t, 2), Reply: good})
		rs, err := m.Poll(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := testkit.OnlyReading(t, rs).Values[PointFlow]; !got.Equal(drivers.Dec(5, -2)) {
			t.Errorf("flow %s", got)
		}
	})
	t.Run("gives up", func(t *testing.T) {
		m := newMeter(t, Config{Retries: 1}, serialsim.Step{Expect: readReq(t, 0)}, serialsim.Step{Expect: readReq(t, 1)})
		_, err := m.Poll(context.Background(), nil)
		if !errors.Is(err, drivers.ErrTimeout) || !strings.Contains(err.Error(), "2 attempts") || !strings.Contains(err.Error(), "w1") {
			t.Fatalf("Poll error %v", err)
		}
	})
}

func TestClockValues(t *testing.T) {
	for _, c := range []struct {
		name  string
		clock [7]byte
		want  string // "" = no meter_time
		err   bool
	}{
		{"valid", [7]byte{0x10, 0x15, 0x12, 0x23, 0x11, 0x17, 0x20}, "2017-11-23T12:15:10+08:00", false},
		{"all FF", noClock, "", false},
		{"zero date", [7]byte{0x60, 0x20, 0x20, 0, 0, 0, 0}, "", false},            // frames.json #38
		{"hex bytes", [7]byte{0x0A, 0x0F, 0x0C, 0x17, 0x0B, 0x11, 0x14}, "", true}, // frames.json #41
		{"31 Feb", [7]byte{0, 0, 0, 0x31, 0x02, 0x26, 0x20}, "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := MeterData{Clock: c.clock, Flow: [4]byte{}, FlowUnit: UnitCubicMetres, SettleUnit: UnitCubicMetres}
			vals, err := d.Values(cst, time.Date(2017, 11, 23, 4, 15, 0, 0, time.UTC))
			if (err != nil) != c.err || (err != nil && !errors.Is(err, ErrValue)) {
				t.Fatalf("error %v, want error: %v", err, c.err)
			}
			got, ok := vals[PointMeterTime]
			if c.want == "" {
				if ok {
					t.Fatalf("meter_time = %s, want none", got)
				}
				if _, ok := vals[PointClockOffset]; ok {
					t.Fatal("clock_offset_s without meter_time")
				}
				return
			}
			if !got.Equal(drivers.Text(c.want)) || !vals[PointClockOffset].Equal(drivers.Int(10)) {
				t.Errorf("meter_time %s offset %s, want %s and 10", got, vals[PointClockOffset], c.want)
			}
		})
	}
}

func TestReadAddress(t *testing.T) {
	// frames.json #27 (3 FE, SER 00) and #28.
	m := newMeter(t, Config{Preamble: 3},
		serialsim.Step{Expect: testkit.Unhex(t, "FE FE FE 68 AA AA AA AA AA AA AA AA 03 03 81 0A 00 49 16"),
			Reply: testkit.Unhex(t, "FE FE FE 68 10 12 00 00 00 00 00 00 83 03 81 0A 00 9B 16")})
	addr, typ, err := m.ReadAddress(context.Background())
	if err != nil || addr != "00000000000012" || typ != TypeColdWater {
		t.Fatalf("ReadAddress = %q, %02X, %v", addr, typ, err)
	}
}

func TestContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := newMeter(t, Config{})
	if _, err := m.Poll(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Poll error %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	if err := (Config{Device: "w", Address: testAddr, Location: cst}).Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]Config{
		"no zone":          {Device: "w", Address: testAddr},
		"negative retries": {Device: "w", Address: testAddr, Retries: -1, Location: cst},
		"negative gap":     {Device: "w", Address: testAddr, Gap: -1, Location: cst},
		"no device":        {Address: testAddr},
		"no address":       {Device: "w"},
		"bad digit":        {Device: "w", Address: "0020151027058X"},
		"too long":         {Device: "w", Address: "002015102705881"},
		"heat meter":       {Device: "w", Address: testAddr, MeterType: TypeHeat},
		"electric":         {Device: "w", Address: testAddr, MeterType: TypeElectric},
		"DI order":         {Device: "w", Address: testAddr, DIOrder: "9010"},
		"timeout":          {Device: "w", Address: testAddr, Timeout: 2 * time.Minute},
		"retries":          {Device: "w", Address: testAddr, Retries: 20},
		"preamble":         {Device: "w", Address: testAddr, Preamble: 99},
		"class":            {Device: "w", Address: testAddr, Class: 200},
	} {
		if err := c.Validate(); !errors.Is(err, drivers.ErrConfig) {
			t.Errorf("%s: Validate = %v, want ErrConfig", name, err)
		}
		if _, err := New(c, serialsim.NewScript(t)); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	if _, err := New(Config{Device: "w", Address: testAddr, Location: cst}, nil); !errors.Is(err, drivers.ErrConfig) {
		t.Errorf("nil port: %v", err)
	}
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// The shortest workable timeout is the frames on the wire plus the meter's
// turnaround, and the default leaves room above it.
func TestMinTimeout(t *testing.T) {
	m := DefaultMode()
	got := MinTimeout(m)
	if want := m.WireTime(2*maxFrame) + MaxTurnaround; got != want || got >= DefaultTimeout {
		t.Errorf("MinTimeout = %v, want %v, below DefaultTimeout %v", got, want, DefaultTimeout)
	}
}
