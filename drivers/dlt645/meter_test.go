package dlt645

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

const testAddr = "218231000114"

// frame builds request or reply bytes with the codec (checked on its own
// against the public frames in golden_test.go).
func frame(t testing.TB, pre int, addr string, control byte, data ...byte) []byte {
	t.Helper()
	a, err := ParseAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	return Encode(Frame{Preamble: pre, Addr: a, Control: control, Data: data})
}

func req07(t testing.TB, addr string, di uint32) []byte {
	return frame(t, 4, addr, FuncRead, encodeDI(V2007, di)...)
}

func ok07(t testing.TB, addr string, di uint32, value ...byte) []byte {
	return frame(t, 2, addr, 0x91, append(encodeDI(V2007, di), value...)...)
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

var fixedNow = time.Date(2026, 11, 30, 1, 36, 0, 0, time.UTC) // 09:36:00 at UTC+8

func newMeter(t *testing.T, c Config, steps ...serialsim.Step) *Meter {
	t.Helper()
	if c.Device == "" {
		c.Device = "m1"
	}
	if c.Address == "" {
		c.Address = testAddr
	}
	if c.Timeout == 0 {
		c.Timeout = 100 * time.Millisecond
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

func TestPollStandardSet2007(t *testing.T) {
	// The first request written out by hand: 4×FE, 68, address 218231000114
	// low byte first (14 01 00 31 82 21), 68, C=11, L=04, DI 00010000 sent
	// DI0 first (00 00 01 00) + 33 each = 33 33 34 33.
	// CS = 68+14+01+00+31+82+21+68+11+04+33+33+34+33 = 0x29B → 9B.
	first := testkit.Unhex(t, "FE FE FE FE 68 14 01 00 31 82 21 68 11 04 33 33 34 33 9B 16")
	if got := req07(t, testAddr, 0x00010000); !bytes.Equal(got, first) {
		t.Fatalf("request % X, want % X", got, first)
	}
	// The public reply of this meter (frames.json #0): 0.06 kWh.
	energyReply := testkit.Unhex(t, "68 14 01 00 31 82 21 68 91 08 33 33 34 33 39 33 33 33 F1 16")
	m := newMeter(t, Config{Class: drivers.Telemetry},
		serialsim.Step{Expect: first, Reply: energyReply},
		serialsim.Step{Expect: req07(t, testAddr, 0x00020000), Reply: ok07(t, testAddr, 0x00020000, 0x34, 0x12, 0x00, 0x00)},
		// single-phase meter: B and C are FFFF (absent)
		serialsim.Step{Expect: req07(t, testAddr, 0x0201FF00), Reply: ok07(t, testAddr, 0x0201FF00, 0x97, 0x22, 0xFF, 0xFF, 0xFF, 0xFF)},
		// A 1.234 A; B −0.500 A (sign bit of the MSB); C absent
		serialsim.Step{Expect: req07(t, testAddr, 0x0202FF00), Reply: ok07(t, testAddr, 0x0202FF00, 0x34, 0x12, 0x00, 0x00, 0x05, 0x80, 0xFF, 0xFF, 0xFF)},
		// −0.1234 kW (reverse power flow)
		serialsim.Step{Expect: req07(t, testAddr, 0x02030000), Reply: ok07(t, testAddr, 0x02030000, 0x34, 0x12, 0x80)},
		// pf −0.987
		serialsim.Step{Expect: req07(t, testAddr, 0x02060000), Reply: ok07(t, testAddr, 0x02060000, 0x87, 0x89)},
		serialsim.Step{Expect: req07(t, testAddr, 0x02800002), Reply: ok07(t, testAddr, 0x02800002, 0x03, 0x50)},
	)
	rs, err := m.Poll(context.Background(), nil)
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	r := testkit.OnlyReading(t, rs)
	if r.Device != "m1" || r.Class != drivers.Telemetry || !r.Time.Equal(fixedNow) || r.DeviceTime {
		t.Errorf("reading header %+v", r)
	}
	testkit.WantValues(t, r.Values, map[string]drivers.Value{
		"energy_kwh":     drivers.Dec(6, -2),
		"energy_rev_kwh": drivers.Dec(1234, -2),
		"voltage_a_v":    drivers.Dec(2297, -1),
		"current_a_a":    drivers.Dec(1234, -3),
		"current_b_a":    drivers.Dec(-500, -3),
		"power_kw":       drivers.Dec(-1234, -4),
		"pf":             drivers.Dec(-987, -3),
		"freq_hz":        drivers.Dec(5003, -2),
	})
	if _, exp, _ := r.Values["energy_kwh"].Decimal(); exp != -2 {
		t.Errorf("energy exponent %d, want -2 (XXXXXX.XX)", exp)
	}
}

func TestPollUnsupportedItemIsSkippedAndNamed(t *testing.T) {
	noData := frame(t, 0, testAddr, 0xD1, 0x02) // D1 01 35 on the wire
	m := newMeter(t, Config{Points: []string{"energy_kwh", "pf", "freq_hz"}},
		serialsim.Step{Expect: req07(t, testAddr, 0x00010000), Reply: ok07(t, testAddr, 0x00010000, 0x78, 0x56, 0x34, 0x12)},
		serialsim.Step{Expect: req07(t, testAddr, 0x02060000), Reply: noData},
		serialsim.Step{Expect: req07(t, testAddr, 0x02800002), Reply: ok07(t, testAddr, 0x02800002, 0x98, 0x49)},
	)
	rs, err := m.Poll(context.Background(), nil)
	if !errors.Is(err, ErrNoData) || !errors.Is(err, ErrAbnormal) {
		t.Fatalf("Poll error %v, want ErrNoData", err)
	}
	var ab *AbnormalError
	if !errors.As(err, &ab) || ab.Control != 0xD1 || ab.Bits != 0x02 {
		t.Errorf("AbnormalError = %+v", ab)
	}
	if !strings.Contains(err.Error(), "02060000") || !strings.Contains(err.Error(), "m1") {
		t.Errorf("error %q does not name the device and the DI", err)
	}
	testkit.WantValues(t, testkit.OnlyReading(t, rs).Values, map[string]drivers.Value{
		"energy_kwh": drivers.Dec(12345678, -2),
		"freq_hz":    drivers.Dec(4998, -2),
	})
}

func TestRefusedBlockFallsBackToSingleItems(t *testing.T) {
	noData := frame(t, 0, testAddr, 0xD1, 0x02)
	m := newMeter(t, Config{Points: []string{"voltage_a_v", "voltage_b_v"}},
		serialsim.Step{Expect: req07(t, testAddr, 0x0201FF00), Reply: noData},
		serialsim.Step{Expect: req07(t, testAddr, 0x02010100), Reply: ok07(t, testAddr, 0x02010100, 0x12, 0x23)},
		serialsim.Step{Expect: req07(t, testAddr, 0x02010200), Reply: ok07(t, testAddr, 0x02010200, 0x05, 0x23)},
	)
	rs, err := m.Poll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WantValues(t, testkit.OnlyReading(t, rs).Values, map[string]drivers.Value{
		"voltage_a_v": drivers.Dec(2312, -1),
		"voltage_b_v": drivers.Dec(2305, -1),
	})
}

func TestShortBlockReplyFallsBackToSingleItems(t *testing.T) {
	// A meter that answers the current block with phase A only.
	m := newMeter(t, Config{Points: []string{"current_a_a", "current_b_a"}},
		serialsim.Step{Expect: req07(t, testAddr, 0x0202FF00), Reply: ok07(t, testAddr, 0x0202FF00, 0x00, 0x50, 0x00)},
		serialsim.Step{Expect: req07(t, testAddr, 0x02020100), Reply: ok07(t, testAddr, 0x02020100, 0x00, 0x50, 0x00)},
		serialsim.Step{Expect: req07(t, testAddr, 0x02020200), Reply: frame(t, 0, testAddr, 0xD1, 0x02)},
	)
	rs, err := m.Poll(context.Background(), nil)
	if !errors.Is(err, ErrNoData) || !strings.Contains(err.Error(), "02020200") {
		t.Fatalf("Poll error %v, want ErrNoData for 02020200", err)
	}
	testkit.WantValues(t, testkit.OnlyReading(t, rs).Values, map[string]drivers.Value{"current_a_a": drivers.Dec(5000, -3)})
}

func TestFollowUpFramesAreConcatenated(t *testing.T) {
	di := encodeDI(V2007, 0x0001FF00)
	// 0xB1: total and T1, T2 now; more follow.
	first := frame(t, 0, testAddr, 0xB1, cat(di, []byte{0x00, 0x10, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00})...)
	// 0x12 with DI + SEQ 01 → 0xB2 (T3, SEQ 01), then SEQ 02 → 0x92 (T4, SEQ 02, last).
	second := frame(t, 0, testAddr, 0xB2, cat(di, []byte{0x00, 0x04, 0x00, 0x00, 0x01})...)
	third := frame(t, 0, testAddr, 0x92, cat(di, []byte{0x01, 0x01, 0x00, 0x00, 0x02})...)
	m := newMeter(t, Config{Points: []string{"energy_kwh", "energy_t1_kwh", "energy_t2_kwh", "energy_t3_kwh", "energy_t4_kwh"}},
		serialsim.Step{Expect: req07(t, testAddr, 0x0001FF00), Reply: first},
		serialsim.Step{Expect: frame(t, 4, testAddr, 0x12, cat(di, []byte{0x01})...), Reply: second},
		serialsim.Step{Expect: frame(t, 4, testAddr, 0x12, cat(di, []byte{0x02})...), Reply: third},
	)
	rs, err := m.Poll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WantValues(t, testkit.OnlyReading(t, rs).Values, map[string]drivers.Value{
		"energy_kwh":    drivers.Dec(1000, -2), // 00 10 00 00 = 00001000 → 10.00
		"energy_t1_kwh": drivers.Dec(200, -2),
		"energy_t2_kwh": drivers.Dec(300, -2),
		"energy_t3_kwh": drivers.Dec(400, -2),
		"energy_t4_kwh": drivers.Dec(101, -2),
	})
}

func TestFollowUpWithWrongSEQIsRetried(t *testing.T) {
	di := encodeDI(V2007, 0x00010000)
	first := frame(t, 0, testAddr, 0xB1, cat(di, []byte{0x00, 0x10})...)
	stale := frame(t, 0, testAddr, 0x92, cat(di, []byte{0x00, 0x00, 0x07})...)
	good := frame(t, 0, testAddr, 0x92, cat(di, []byte{0x00, 0x00, 0x01})...)
	m := newMeter(t, Config{Points: []string{"energy_kwh"}, Retries: 1},
		serialsim.Step{Expect: req07(t, testAddr, 0x00010000), Reply: first},
		serialsim.Step{Expect: frame(t, 4, testAddr, 0x12, cat(di, []byte{0x01})...), Reply: stale},
		serialsim.Step{Expect: frame(t, 4, testAddr, 0x12, cat(di, []byte{0x01})...), Reply: good},
	)
	rs, err := m.Poll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WantValues(t, testkit.OnlyReading(t, rs).Values, map[string]drivers.Value{"energy_kwh": drivers.Dec(1000, -2)})
}

func TestNoiseEchoAndPreambleBeforeReply(t *testing.T) {
	req := req07(t, testAddr, 0x02800002)
	// line noise with a false 68, the converter's echo of our request,
	// FE bytes, then the reply.
	reply := cat([]byte{0x00, 0x68, 0x55, 0x68, 0xFF}, req, []byte{0xFE, 0xFE, 0xFE}, ok07(t, testAddr, 0x02800002, 0x00, 0x50))
	m := newMeter(t, Config{Points: []string{"freq_hz"}}, serialsim.Step{Expect: req, Reply: reply})
	rs, err := m.Poll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WantValues(t, testkit.OnlyReading(t, rs).Values, map[string]drivers.Value{"freq_hz": drivers.Dec(5000, -2)})
}

func TestWrongAddress(t *testing.T) {
	other := "218231000115"
	req := req07(t, testAddr, 0x00010000)
	t.Run("no retries", func(t *testing.T) {
		m := newMeter(t, Config{Points: []string{"energy_kwh"}, Retries: 0},
			serialsim.Step{Expect: req, Reply: ok07(t, other, 0x00010000, 0, 0, 0, 0)})
		rs, err := m.Poll(context.Background(), nil)
		if !errors.Is(err, ErrWrongAddress) || len(rs) != 0 {
			t.Fatalf("Poll = %v, %v; want ErrWrongAddress and no reading", rs, err)
		}
		if !strings.Contains(err.Error(), other) {
			t.Errorf("error %q does not name the address that answered", err)
		}
	})
	t.Run("retried", func(t *testing.T) {
		m := newMeter(t, Config{Points: []string{"energy_kwh"}, Retries: 1},
			serialsim.Step{Expect: req, Reply: ok07(t, other, 0x00010000, 0, 0, 0, 0)},
			serialsim.Step{Expect: req, Reply: ok07(t, testAddr, 0x00010000, 0x01, 0, 0, 0)})
		rs, err := m.Poll(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		testkit.WantValues(t, testkit.OnlyReading(t, rs).Values, map[string]drivers.Value{"energy_kwh": drivers.Dec(1, -2)})
	})
	t.Run("wildcard accepts any", func(t *testing.T) {
		m := newMeter(t, Config{Address: "AAAAAA000114", Points: []string{"energy_kwh"}, Retries: 0},
			serialsim.Step{Expect: req07(t, "AAAAAA000114", 0x00010000), Reply: ok07(t, testAddr, 0x00010000, 0x02, 0, 0, 0)})
		rs, err := m.Poll(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		testkit.WantValues(t, testkit.OnlyReading(t, rs).Values, map[string]drivers.Value{"energy_kwh": drivers.Dec(2, -2)})
	})
	t.Run("short address mismatch", func(t *testing.T) {
		m := newMeter(t, Config{Address: "AAAAAA000114", Points: []string{"energy_kwh"}, Retries: 0},
			serialsim.Step{Expect: req07(t, "AAAAAA000114", 0x00010000), Reply: ok07(t, "218231000113", 0x00010000, 0x02, 0, 0, 0)})
		if _, err := m.Poll(context.Background(), nil); !errors.Is(err, ErrWrongAddress) {
			t.Fatalf("Poll error %v, want ErrWrongAddress", err)
		}
	})
}

func TestRetriesAfterTimeoutAndBadFrame(t *testing.T) {
	req := req07(t, testAddr, 0x00010000)
	good := ok07(t, testAddr, 0x00010000, 0x99, 0x99, 0x99, 0x99)
	bad := bytes.Clone(good)
	bad[len(bad)-2]++ // checksum
	m := newMeter(t, Config{Points: []string{"energy_kwh"}, Retries: 2},
		serialsim.Step{Expect: req},             // silent: timeout
		serialsim.Step{Expect: req, Reply: bad}, // garbled
		serialsim.Step{Expect: req, Reply: good},
	)
	rs, err := m.Poll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WantValues(t, testkit.OnlyReading(t, rs).Values, map[string]drivers.Value{"energy_kwh": drivers.Dec(99999999, -2)})
}

func TestSilentMeterStopsThePollEarly(t *testing.T) {
	req := req07(t, testAddr, 0x00010000)
	// Three attempts of the first item, then no more requests.
	m := newMeter(t, Config{Retries: 2}, serialsim.Step{Expect: req}, serialsim.Step{Expect: req}, serialsim.Step{Expect: req})
	rs, err := m.Poll(context.Background(), nil)
	if !errors.Is(err, drivers.ErrTimeout) || len(rs) != 0 {
		t.Fatalf("Poll = %v, %v; want ErrTimeout and no reading", rs, err)
	}
	if !strings.Contains(err.Error(), "3 attempts") {
		t.Errorf("error %q does not say how often it tried", err)
	}
}

func TestTimeSyncBroadcastBytes(t *testing.T) {
	// 2026-11-30 09:37:05 → DATA ss mm hh DD MM YY = 05 37 09 30 11 26,
	// +33 each = 38 6A 3C 63 44 59 (09+33 = 3C).
	// CS = 68 + 6×99 + 68 + 08 + 06 + 38+6A+3C+63+44+59
	//    = 0x68+0x396+0x68+0x08+0x06+0x1E4 = 0x652 → 52.
	want := testkit.Unhex(t, "FE FE FE FE 68 99 99 99 99 99 99 68 08 06 38 6A 3C 63 44 59 52 16")
	p := serialsim.NewScript(t, serialsim.Step{Expect: want})
	// The instant is given in UTC (as the process's zone might be): the
	// frame carries it as local time in the meters' zone.
	t.Setenv("TZ", "UTC")
	tm := time.Date(2026, 11, 30, 1, 37, 5, 0, time.UTC)
	if err := TimeSync(context.Background(), p, V2007, tm, shanghai(t), 0); err != nil {
		t.Fatal(err)
	}
	if err := TimeSync(context.Background(), p, V2007, time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), time.UTC, 0); !errors.Is(err, ErrValue) {
		t.Errorf("year 1999: %v, want ErrValue", err)
	}
	if err := TimeSync(context.Background(), p, V2007, tm, nil, 0); !errors.Is(err, drivers.ErrConfig) {
		t.Errorf("no zone: %v, want ErrConfig", err)
	}
}

// shanghai is the zone of the meters in the field, loaded from the
// system's zone database as gateway/config loads gateway.timezone.
func shanghai(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// The meter's BCD date and time are local time in Config.Location, not in
// the process's zone: with TZ=UTC in the environment a meter at 09:36:00
// in Shanghai is read as 01:36:00Z, on time with the gateway.
func TestMeterClockIgnoresProcessZone(t *testing.T) {
	t.Setenv("TZ", "UTC")
	m := newMeter(t, Config{Points: []string{PointMeterTime, PointClockOffset}, Location: shanghai(t)},
		serialsim.Step{Expect: req07(t, testAddr, 0x04000101), Reply: ok07(t, testAddr, 0x04000101, 0x01, 0x30, 0x11, 0x26)},
		serialsim.Step{Expect: req07(t, testAddr, 0x04000102), Reply: ok07(t, testAddr, 0x04000102, 0x00, 0x36, 0x09)},
	)
	rs, err := m.Poll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WantValues(t, testkit.OnlyReading(t, rs).Values, map[string]drivers.Value{
		PointMeterTime:   drivers.Text("2026-11-30T09:36:00+08:00"),
		PointClockOffset: drivers.Int(0),
	})
	_, err = New(Config{Device: "m", Address: testAddr, Points: []string{PointClockOffset}}, serialsim.NewScript(t))
	if !errors.Is(err, drivers.ErrConfig) || !strings.Contains(err.Error(), "time zone") {
		t.Errorf("clock read without a zone: %v, want ErrConfig naming the time zone", err)
	}
}

func TestMeterClock(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	dateReply := ok07(t, testAddr, 0x04000101, 0x01, 0x30, 0x11, 0x26) // WW DD MM YY: Monday 2026-11-30
	t.Run("offset", func(t *testing.T) {
		m := newMeter(t, Config{Points: []string{PointMeterTime, PointClockOffset}, Location: cst},
			serialsim.Step{Expect: req07(t, testAddr, 0x04000101), Reply: dateReply},
			serialsim.Step{Expect: req07(t, testAddr, 0x04000102), Reply: ok07(t, testAddr, 0x04000102, 0x05, 0x37, 0x09)},
		)
		rs, err := m.Poll(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		// meter 09:37:05 +08:00, gateway 01:36:00Z = 09:36:00 +08:00 → +65 s
		testkit.WantValues(t, testkit.OnlyReading(t, rs).Values, map[string]drivers.Value{
			PointMeterTime:   drivers.Text("2026-11-30T09:37:05+08:00"),
			PointClockOffset: drivers.Int(65),
		})
	})
	t.Run("midnight re-reads the date", func(t *testing.T) {
		m := newMeter(t, Config{Points: []string{PointClockOffset}, Location: time.UTC},
			serialsim.Step{Expect: req07(t, testAddr, 0x04000101), Reply: ok07(t, testAddr, 0x04000101, 0x00, 0x29, 0x11, 0x26)},
			serialsim.Step{Expect: req07(t, testAddr, 0x04000102), Reply: ok07(t, testAddr, 0x04000102, 0x02, 0x00, 0x00)},
			serialsim.Step{Expect: req07(t, testAddr, 0x04000101), Reply: dateReply},
		)
		rs, err := m.Poll(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		// 2026-11-30 00:00:02 UTC − 01:36:00 UTC = −5758 s
		testkit.WantValues(t, testkit.OnlyReading(t, rs).Values, map[string]drivers.Value{PointClockOffset: drivers.Int(-5758)})
	})
	t.Run("no clock", func(t *testing.T) {
		m := newMeter(t, Config{Points: []string{"freq_hz", PointMeterTime}, Location: cst},
			serialsim.Step{Expect: req07(t, testAddr, 0x02800002), Reply: ok07(t, testAddr, 0x02800002, 0x00, 0x50)},
			serialsim.Step{Expect: req07(t, testAddr, 0x04000101), Reply: ok07(t, testAddr, 0x04000101, 0xFF, 0xFF, 0xFF, 0xFF)},
			serialsim.Step{Expect: req07(t, testAddr, 0x04000102), Reply: ok07(t, testAddr, 0x04000102, 0xFF, 0xFF, 0xFF)},
		)
		rs, err := m.Poll(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		testkit.WantValues(t, testkit.OnlyReading(t, rs).Values, map[string]drivers.Value{"freq_hz": drivers.Dec(5000, -2)})
	})
	t.Run("bad date", func(t *testing.T) {
		m := newMeter(t, Config{Points: []string{PointMeterTime}, Location: cst},
			serialsim.Step{Expect: req07(t, testAddr, 0x04000101), Reply: ok07(t, testAddr, 0x04000101, 0x01, 0x31, 0x02, 0x26)},
			serialsim.Step{Expect: req07(t, testAddr, 0x04000102), Reply: ok07(t, testAddr, 0x04000102, 0x00, 0x00, 0x12)},
		)
		rs, err := m.Poll(context.Background(), nil)
		if !errors.Is(err, ErrValue) || len(rs) != 0 {
			t.Fatalf("Poll = %v, %v; want ErrValue for 31 February", rs, err)
		}
	})
}

func TestPoll1997(t *testing.T) {
	const addr = "000000000003"
	req97 := func(di uint32) []byte { return frame(t, 4, addr, Func97Read, encodeDI(V1997, di)...) }
	ok97 := func(di uint32, v ...byte) []byte {
		return frame(t, 0, addr, 0x81, append(encodeDI(V1997, di), v...)...)
	}
	// The B611 request and reply of the Heyuan manual (frames.json #21/#22), with 4 FE.
	b611 := testkit.Unhex(t, "FE FE FE FE 68 03 00 00 00 00 00 68 01 02 44 E9 03 16")
	if got := req97(0xB611); !bytes.Equal(got, b611) {
		t.Fatalf("request % X, want % X", got, b611)
	}
	m := newMeter(t, Config{Address: addr, Version: V1997,
		Points: []string{"energy_kwh", "voltage_a_v", "current_a_a", "power_kw", "pf"}},
		serialsim.Step{Expect: req97(0x9010), Reply: ok97(0x9010, 0x01, 0x00, 0x00, 0x00)},
		serialsim.Step{Expect: b611, Reply: testkit.Unhex(t, "68 03 00 00 00 00 00 68 81 04 44 E9 33 34 EC 16")},
		serialsim.Step{Expect: req97(0xB621), Reply: ok97(0xB621, 0x50, 0x85)}, // 85.50 A: no sign in 1997
		serialsim.Step{Expect: req97(0xB630), Reply: ok97(0xB630, 0x00, 0x50, 0x12)},
		serialsim.Step{Expect: req97(0xB650), Reply: frame(t, 0, addr, 0xC1, 0x02)},
	)
	rs, err := m.Poll(context.Background(), nil)
	var ab *AbnormalError
	if !errors.As(err, &ab) || ab.Control != 0xC1 || !errors.Is(err, ErrNoData) {
		t.Fatalf("Poll error %v, want 0xC1 wrong DI (ErrNoData)", err)
	}
	testkit.WantValues(t, testkit.OnlyReading(t, rs).Values, map[string]drivers.Value{
		"energy_kwh":  drivers.Dec(1, -2),
		"voltage_a_v": drivers.Dec(100, 0),
		"current_a_a": drivers.Dec(8550, -2),
		"power_kw":    drivers.Dec(125000, -4),
	})
}

func TestReadAddress(t *testing.T) {
	t.Run("2007", func(t *testing.T) {
		// frames.json #11 (request) and #16 (reply).
		m := newMeter(t, Config{},
			serialsim.Step{Expect: testkit.Unhex(t, "FE FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16"),
				Reply: testkit.Unhex(t, "68 01 01 19 00 00 00 68 93 06 34 34 4C 33 33 33 D1 16")})
		got, err := m.ReadAddress(context.Background())
		if err != nil || got != "000000190101" {
			t.Fatalf("ReadAddress = %q, %v", got, err)
		}
	})
	t.Run("1997", func(t *testing.T) {
		di := encodeDI(V1997, 0xC032)
		m := newMeter(t, Config{Version: V1997, Points: []string{"energy_kwh"}},
			serialsim.Step{Expect: frame(t, 4, WildcardAddress, Func97Read, di...),
				Reply: frame(t, 1, "138000130754", 0x81, cat(di, []byte{0x54, 0x07, 0x13, 0x00, 0x80, 0x13})...)})
		got, err := m.ReadAddress(context.Background())
		if err != nil || got != "138000130754" {
			t.Fatalf("ReadAddress = %q, %v", got, err)
		}
	})
}

func TestProbe(t *testing.T) {
	wild := WildcardAddress
	t.Run("1997 meter", func(t *testing.T) {
		p := serialsim.NewScript(t,
			serialsim.Step{Expect: req07(t, wild, 0x00010000)}, // a 1997 meter ignores 0x11
			serialsim.Step{Expect: frame(t, 4, wild, Func97Read, 0x10, 0x90),
				Reply: testkit.Unhex(t, "68 54 07 13 00 80 13 68 81 06 43 C3 34 33 33 33 2B 16")}) // frames.json #25
		res, err := Probe(context.Background(), p, "", 50*time.Millisecond, 0)
		if err != nil {
			t.Fatal(err)
		}
		if res.Version != V1997 || res.Address != "138000130754" || !res.Energy.Equal(drivers.Dec(1, -2)) {
			t.Errorf("Probe = %+v", res)
		}
	})
	t.Run("2007 meter refusing", func(t *testing.T) {
		p := serialsim.NewScript(t, serialsim.Step{Expect: req07(t, testAddr, 0x00010000), Reply: frame(t, 0, testAddr, 0xD1, 0x02)})
		res, err := Probe(context.Background(), p, testAddr, 50*time.Millisecond, 0)
		if err != nil {
			t.Fatal(err)
		}
		if res.Version != V2007 || res.Address != testAddr || !errors.Is(res.Refused, ErrNoData) {
			t.Errorf("Probe = %+v", res)
		}
	})
	t.Run("nothing", func(t *testing.T) {
		p := serialsim.NewScript(t, serialsim.Step{Expect: req07(t, wild, 0x00010000)},
			serialsim.Step{Expect: frame(t, 4, wild, Func97Read, 0x10, 0x90)})
		if _, err := Probe(context.Background(), p, "", 50*time.Millisecond, 0); !errors.Is(err, ErrNoAnswer) || !errors.Is(err, drivers.ErrTimeout) {
			t.Fatalf("Probe error %v, want ErrNoAnswer (timeouts)", err)
		}
	})
}

func TestContextCancelStopsPoll(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := newMeter(t, Config{})
	rs, err := m.Poll(ctx, nil)
	if !errors.Is(err, context.Canceled) || len(rs) != 0 {
		t.Fatalf("Poll = %v, %v; want context.Canceled", rs, err)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Device: "m", Address: testAddr}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, c := range map[string]Config{
		"no device":        {Address: testAddr},
		"no address":       {Device: "m"},
		"bad digit":        {Device: "m", Address: "21823100011G"},
		"too long":         {Device: "m", Address: "2182310001140"},
		"broadcast":        {Device: "m", Address: BroadcastAddress},
		"version":          {Device: "m", Address: testAddr, Version: 7},
		"unknown point":    {Device: "m", Address: testAddr, Points: []string{"energy_kWh"}},
		"freq in 1997":     {Device: "m", Address: testAddr, Version: V1997, Points: []string{"freq_hz"}},
		"duplicate point":  {Device: "m", Address: testAddr, Points: []string{"pf", "pf"}},
		"timeout":          {Device: "m", Address: testAddr, Timeout: -time.Second},
		"retries":          {Device: "m", Address: testAddr, Retries: 11},
		"negative retries": {Device: "m", Address: testAddr, Retries: -1},
		"negative gap":     {Device: "m", Address: testAddr, Gap: -time.Millisecond},
		"preamble":         {Device: "m", Address: testAddr, Preamble: 17},
		"class":            {Device: "m", Address: testAddr, Class: 9},
	} {
		err := c.Validate()
		if !errors.Is(err, drivers.ErrConfig) {
			t.Errorf("%s: Validate = %v, want ErrConfig", name, err)
		}
		if _, err := New(c, serialsim.NewScript(t)); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	if _, err := New(good, nil); !errors.Is(err, drivers.ErrConfig) {
		t.Errorf("nil port: %v", err)
	}
}

func TestPlanPrefersBlocks(t *testing.T) {
	reads, clock, err := plan(V2007, StandardPoints(V2007))
	if err != nil || clock {
		t.Fatal(err, clock)
	}
	var got []string
	for _, r := range reads {
		got = append(got, r.item.DIString(V2007))
	}
	want := "00010000 00020000 0201FF00 0202FF00 02030000 02060000 02800002"
	if strings.Join(got, " ") != want {
		t.Errorf("plan = %v, want %s", got, want)
	}
	reads, _, _ = plan(V2007, []string{"voltage_b_v", "energy_kwh"})
	if len(reads) != 2 || reads[0].item.DI != 0x00010000 || reads[1].item.DI != 0x02010200 {
		t.Errorf("single points must not use a block: %+v", reads)
	}
}

func TestFollowUpAndClock1997(t *testing.T) {
	const addr = "000003430163"
	di := encodeDI(V1997, 0x901F) // 1F 90
	m := newMeter(t, Config{Address: addr, Version: V1997, Location: time.UTC,
		Points: []string{"energy_kwh", "energy_t1_kwh", "energy_t4_kwh", PointMeterTime, PointClockOffset}},
		// 0xA1: total and T1, more follow; 0x02 + DI (no SEQ in 1997) → 0x82: T2..T4.
		serialsim.Step{Expect: frame(t, 4, addr, Func97Read, di...),
			Reply: frame(t, 0, addr, 0xA1, cat(di, []byte{0x00, 0x50, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00})...)},
		serialsim.Step{Expect: frame(t, 4, addr, Func97ReadFollow, di...),
			Reply: frame(t, 0, addr, 0x82, cat(di, []byte{0, 0x10, 0, 0, 0, 0x10, 0, 0, 0, 0x10, 0, 0})...)},
		serialsim.Step{Expect: frame(t, 4, addr, Func97Read, 0x10, 0xC0),
			Reply: frame(t, 0, addr, 0x81, 0x10, 0xC0, 0x01, 0x30, 0x11, 0x26)},
		serialsim.Step{Expect: frame(t, 4, addr, Func97Read, 0x11, 0xC0),
			Reply: frame(t, 0, addr, 0x81, 0x11, 0xC0, 0x00, 0x36, 0x01)},
	)
	rs, err := m.Poll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WantValues(t, testkit.OnlyReading(t, rs).Values, map[string]drivers.Value{
		"energy_kwh":     drivers.Dec(5000, -2),
		"energy_t1_kwh":  drivers.Dec(2000, -2),
		"energy_t4_kwh":  drivers.Dec(1000, -2),
		PointMeterTime:   drivers.Text("2026-11-30T01:36:00Z"),
		PointClockOffset: drivers.Int(0),
	})
}

// The meter declares the silence it needs before a request (the line's
// owner keeps it).
func TestFrameGapIsDeclared(t *testing.T) {
	m, err := New(Config{Device: "m", Address: testAddr}, serialsim.NewScript(t))
	if err != nil {
		t.Fatal(err)
	}
	if g := m.FrameGap(); g != DefaultGap {
		t.Errorf("FrameGap() = %v, want DefaultGap %v", g, DefaultGap)
	}
	m2, err := New(Config{Device: "m", Address: testAddr, Gap: 80 * time.Millisecond}, serialsim.NewScript(t))
	if err != nil {
		t.Fatal(err)
	}
	if g := m2.FrameGap(); g != 80*time.Millisecond {
		t.Errorf("FrameGap() = %v, want the configured 80ms", g)
	}
}

// With no Points the meter reads StandardPoints, all three phases of a
// three-phase meter: the one default read set.
func TestDefaultPointsAreAllPhases(t *testing.T) {
	m, err := New(Config{Device: "m", Address: testAddr}, serialsim.NewScript(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"voltage_b_v", "voltage_c_v", "current_b_a", "current_c_a"} {
		if !m.want[p] {
			t.Errorf("default read set lacks %s", p)
		}
	}
}

// The shortest workable timeout is the frames on the wire plus the
// longest turnaround the standard allows: slower lines need more.
func TestMinTimeout(t *testing.T) {
	fast, slow := MinTimeout(DefaultMode(V2007)), MinTimeout(DefaultMode(V1997))
	if fast <= MaxTurnaround || slow <= fast || fast >= DefaultTimeout {
		t.Errorf("MinTimeout 2400 8E1 %v, 1200 8E1 %v; want above %v, growing as the line slows, below the default %v", fast, slow, MaxTurnaround, DefaultTimeout)
	}
}
