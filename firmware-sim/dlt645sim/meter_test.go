package dlt645sim

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/firmware-sim/internal/rs485"
	"github.com/townlink/townlink/internal/testkit"
)

// fakeClock is an injected time source.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2024, 3, 15, 10, 0, 0, 0, time.Local)}
}

func diBytes(di uint32) []byte {
	return []byte{byte(di), byte(di >> 8), byte(di >> 16), byte(di >> 24)}
}

func read07(m *Meter, di uint32) frame {
	return request(m, frame{addr: m.addr, c: 0x11, data: diBytes(di)})
}

// request passes a request through the meter and parses its reply.
func request(m *Meter, req frame) frame {
	r := m.handle(req)
	if r.reply == nil {
		return frame{}
	}
	f, _, _, _, ok := scan(r.reply)
	if !ok {
		panic("meter sent an invalid frame")
	}
	return f
}

func inVectors(t *testing.T, h string) {
	t.Helper()
	for _, v := range loadVectors(t) {
		if v.Hex == h {
			return
		}
	}
	t.Fatalf("%s is not in testdata/frames.json", h)
}

// The simulator's encoder reproduces public reply frames byte for byte
// (with the same number of FE in front).
func TestGoldenReplies(t *testing.T) {
	cases := []struct {
		name, addr string
		ver        Version
		item, val  string
		req        frame // address filled in from the meter
		reply      string
	}{
		{"229.7 V phase A", "003411001043", V2007, "voltage_a_v", "229.7",
			frame{c: 0x11, data: diBytes(0x02010100)}, "FE FE FE FE 68 43 10 00 11 34 00 68 91 06 33 34 34 35 CA 55 EE 16"},
		{"forward energy 0.06", "218231000114", V2007, "energy_kwh", "0.06",
			frame{c: 0x11, data: diBytes(0x00010000)}, "68 14 01 00 31 82 21 68 91 08 33 33 34 33 39 33 33 33 F1 16"},
		{"220.0 V phase C", "000000001111", V2007, "voltage_c_v", "220.0",
			frame{c: 0x11, data: diBytes(0x02010300)}, "68 11 11 00 00 00 00 68 91 06 33 36 34 35 33 55 E3 16"},
		{"phase B current 0, raw address", "3A2107000481", V2007, "current_b_a", "0",
			frame{c: 0x11, data: diBytes(0x02020200)}, "68 81 04 00 07 21 3A 68 91 07 33 35 35 35 33 33 33 BA 16"},
		{"forward energy 0.02", "020247020276", V2007, "energy_kwh", "0.02",
			frame{c: 0x11, data: diBytes(0x00010000)}, "68 76 02 02 47 02 02 68 91 08 33 33 34 33 35 33 33 33 C9 16"},
		{"frequency 50.03", "171118445100", V2007, "freq_hz", "50.03",
			frame{c: 0x11, data: diBytes(0x02800002)}, "FE FE FE FE 68 00 51 44 18 11 17 68 91 06 35 33 B3 35 36 83 45 16"},
		{"energy 0.00", "000072007201", V2007, "energy_kwh", "0",
			frame{c: 0x11, data: diBytes(0x00010000)}, "68 01 72 00 72 00 00 68 91 08 33 33 34 33 33 33 33 33 E7 16"},
		{"read address", "000000190101", V2007, "", "",
			frame{c: 0x13}, "68 01 01 19 00 00 00 68 93 06 34 34 4C 33 33 33 D1 16"},
		{"read address, 4 FE", "111111111111", V2007, "", "",
			frame{c: 0x13}, "FE FE FE FE 68 11 11 11 11 11 11 68 93 06 44 44 44 44 44 44 67 16"},
		{"no requested data", "111111111111", V2007, "", "",
			frame{c: 0x11, data: diBytes(0x028022FF)}, "FE FE FE FE 68 11 11 11 11 11 11 68 D1 01 35 3D 16"},
		{"1997 B611 100 V", "000000000003", V1997, "voltage_a_v", "100.0",
			frame{c: 0x01, data: []byte{0x11, 0xB6}}, "68 03 00 00 00 00 00 68 81 04 44 E9 33 34 EC 16"},
		{"1997 9010 0.01 kWh", "138000130754", V1997, "energy_kwh", "0.01",
			frame{c: 0x01, data: []byte{0x10, 0x90}}, "68 54 07 13 00 80 13 68 81 06 43 C3 34 33 33 33 2B 16"},
		{"1997 B613 220 V", "000000001111", V1997, "voltage_c_v", "220.0",
			frame{c: 0x01, data: []byte{0x13, 0xB6}}, "68 11 11 00 00 00 00 68 81 04 46 E9 53 35 2E 16"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inVectors(t, c.reply)
			want := testkit.Unhex(t, c.reply)
			m := NewMeter(c.addr, c.ver)
			m.SetPreamble(bytes.Count(want[:min(4, len(want))], []byte{0xFE}))
			if c.item != "" {
				m.Set(c.item, c.val)
			}
			req := c.req
			req.addr = [6]byte{0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA}
			if c.req.c != 0x13 {
				req.addr = m.addr
			}
			r := m.handle(req)
			if !bytes.Equal(r.reply, want) {
				t.Fatalf("reply\n got % X\nwant % X", r.reply, want)
			}
		})
	}
}

// The meters accept the public request frames addressed to them.
func TestPublicRequestsAnswered(t *testing.T) {
	cases := []struct {
		req, addr string
		ver       Version
		replyC    byte
	}{
		{"FE FE FE FE 68 43 10 00 11 34 00 68 11 04 33 33 39 35 51 16", "003411001043", V2007, 0x91}, // power factor
		{"FE FE FE FE 68 43 10 00 11 34 00 68 11 04 35 33 B3 35 CD 16", "003411001043", V2007, 0x91}, // frequency
		{"FE FE FE FE 68 02 00 31 08 22 20 68 11 04 32 55 B3 35 D1 16", "202208310002", V2007, 0xD1}, // vendor DI: no data
		{"FE FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16", "000000190101", V2007, 0x93},             // read address
		{"68 AA AA AA AA AA AA 68 11 04 33 34 34 35 B1 16", "240309855761", V2007, 0x91},             // wildcard voltage A
		{"68 AA AA AA AA AA AA 68 11 04 33 33 34 33 AE 16", "240309855761", V2007, 0x91},             // wildcard energy
		{"68 61 57 85 09 03 24 68 11 04 33 34 34 35 22 16", "240309855761", V2007, 0x91},             // voltage A
		{"68 03 00 00 00 00 00 68 01 02 44 E9 03 16", "000000000003", V1997, 0x81},                   // B611
		{"68 63 01 43 03 00 00 68 01 02 43 C3 83 16", "000003430163", V1997, 0x81},                   // 9010
		{"68 54 07 13 00 80 13 68 01 02 43 C3 DA 16", "138000130754", V1997, 0x81},                   // 9010
	}
	for _, c := range cases {
		inVectors(t, c.req)
		f, _, _, _, ok := scan(testkit.Unhex(t, c.req))
		if !ok {
			t.Fatalf("%s: not parsed", c.req)
		}
		if got := request(NewMeter(c.addr, c.ver), f); got.c != c.replyC {
			t.Errorf("%s: reply C %02X, want %02X", c.req, got.c, c.replyC)
		}
	}
}

func TestSetIsExact(t *testing.T) {
	m := NewMeter("1", V2007)
	m.Set("energy_kwh", "123456.78")
	m.Set("current_a_a", "-1.234")
	m.Set("power_kw", "-0.5")
	if v, _ := m.Get("energy_kwh"); v != "123456.78" {
		t.Errorf("energy %s", v)
	}
	if v, _ := m.Get("power_kw"); v != "-0.5000" {
		t.Errorf("power %s", v)
	}
	for _, c := range []struct{ item, val string }{
		{"energy_kwh", "1.234"},           // more decimals than XXXXXX.XX
		{"energy_kwh", "1000000"},         // too many digits
		{"energy_kwh", "-1"},              // unsigned
		{"current_a_a", "800.000"},        // sign bit
		{"voltage_a_v", "2x0"},            // not a number
		{"voltage_a_v", ""},               // empty
		{"clock", "yesterday"},            // not a time
		{"meter_number", "1234567890123"}, // 13 digits
	} {
		if err := m.SetValue(c.item, c.val); !errors.Is(err, ErrValue) {
			t.Errorf("Set(%q, %q) = %v, want ErrValue", c.item, c.val, err)
		}
	}
	if err := m.SetValue("voltage_d_v", "1"); !errors.Is(err, ErrItem) {
		t.Errorf("unknown item: %v", err)
	}
}

func TestEncodings2007(t *testing.T) {
	clk := newFakeClock()
	m := NewMeter("000000000001", V2007)
	m.SetTimeSource(clk.now)
	m.Set("current_a_a", "-1.234")
	m.Set("power_kw", "-12.3456")
	m.Set("pf", "-0.987")
	m.Set("clock", "2024-03-15 10:20:30") // a Friday
	for _, c := range []struct {
		di   uint32
		want string // DATA after −0x33, without the DI
	}{
		{0x02020100, "34 12 80"},
		{0x02030000, "56 34 92"},
		{0x02060000, "87 89"},
		{0x04000101, "05 15 03 24"},
		{0x04000102, "30 20 10"},
		{0x0400010C, "30 20 10 05 15 03 24"},
		{0x04000401, "01 00 00 00 00 00"},
		{0x02010000, ""}, // no such item
	} {
		f := read07(m, c.di)
		if c.want == "" {
			if f.c != 0xD1 || !bytes.Equal(f.data, []byte{0x02}) {
				t.Errorf("%08X: C %02X data % X, want D1 02", c.di, f.c, f.data)
			}
			continue
		}
		if f.c != 0x91 || !bytes.Equal(f.data[:4], diBytes(c.di)) || !bytes.Equal(f.data[4:], testkit.Unhex(t, c.want)) {
			t.Errorf("%08X: C %02X data % X, want 91 %s", c.di, f.c, f.data, c.want)
		}
	}
}

func TestSinglePhaseAndBlocks(t *testing.T) {
	m := NewMeter("1", V2007)
	m.SetPhases(1)
	m.Set("voltage_a_v", "225.6")
	if f := read07(m, 0x0201FF00); !bytes.Equal(f.data[4:], testkit.Unhex(t, "56 22 FF FF FF FF")) {
		t.Errorf("voltage block % X", f.data[4:])
	}
	if f := read07(m, 0x02010200); !bytes.Equal(f.data[4:], testkit.Unhex(t, "FF FF")) {
		t.Errorf("phase B voltage % X", f.data[4:])
	}
	m.Set("energy_kwh", "10.00")
	m.Set("energy_t1_kwh", "1.00")
	m.Set("energy_t4_kwh", "9.00")
	if f := read07(m, 0x0001FF00); !bytes.Equal(f.data[4:], testkit.Unhex(t, "00 10 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 09 00 00")) {
		t.Errorf("energy block % X", f.data[4:])
	}
	m.Set("power_kw", "1.5")
	if f := read07(m, 0x0203FF00); len(f.data) != 4+12 || !bytes.Equal(f.data[4:7], testkit.Unhex(t, "00 50 01")) || !bytes.Equal(f.data[10:13], testkit.Unhex(t, "FF FF FF")) {
		t.Errorf("power block % X", f.data[4:])
	}
}

func TestEncodings1997(t *testing.T) {
	m := NewMeter("1", V1997)
	m.Set("voltage_a_v", "229.5") // rounds to 230
	m.Set("current_a_a", "-1.235")
	m.Set("power_kw", "-1.2345")
	for _, c := range []struct {
		di   uint16
		want string
	}{
		{0xB611, "30 02"},
		{0xB621, "24 01"}, // 1.24 A, no sign bit
		{0xB630, "45 23 01"},
		{0xB61F, "30 02 20 02 20 02"},
		{0x901F, strings.Repeat("00 ", 20)},
	} {
		f := request(m, frame{addr: m.addr, c: 0x01, data: []byte{byte(c.di), byte(c.di >> 8)}})
		if f.c != 0x81 || !bytes.Equal(f.data[2:], testkit.Unhex(t, c.want)) {
			t.Errorf("%04X: C %02X data % X, want 81 %s", c.di, f.c, f.data, c.want)
		}
	}
	if f := request(m, frame{addr: m.addr, c: 0x01, data: []byte{0x99, 0x99}}); f.c != 0xC1 || !bytes.Equal(f.data, []byte{0x02}) {
		t.Errorf("unknown 1997 DI: C %02X data % X", f.c, f.data)
	}
	if r := m.handle(frame{addr: m.addr, c: 0x11, data: diBytes(0x00010000)}); r.reply != nil {
		t.Errorf("a 1997 meter answered a 2007 read: % X", r.reply)
	}
	if r := NewMeter("1", V2007).handle(frame{addr: m.addr, c: 0x01, data: []byte{0x10, 0x90}}); r.reply != nil {
		t.Errorf("a 2007 meter answered a 1997 read: % X", r.reply)
	}
}

func TestFollowUp(t *testing.T) {
	clk := newFakeClock()
	m := NewMeter("000000000042", V2007)
	m.SetTimeSource(clk.now)
	m.Set("voltage_a_v", "231.2")
	first := read07(m, loadProfileDI)
	if first.c != 0xB1 || len(first.data) != 4+11*lpRecordSize {
		t.Fatalf("first frame C %02X, %d data bytes", first.c, len(first.data))
	}
	// First record: 11 quarter hours before 10:00, i.e. 07:15 on 2024-03-15, then 231.2 V.
	if !bytes.Equal(first.data[4:11], testkit.Unhex(t, "15 07 15 03 24 12 23")) {
		t.Errorf("first record % X", first.data[4:11])
	}
	follow := func(seq byte) frame {
		return request(m, frame{addr: m.addr, c: 0x12, data: append(diBytes(loadProfileDI), seq)})
	}
	second := follow(1)
	if second.c != 0x92 || len(second.data) != 4+lpRecordSize+1 || second.data[len(second.data)-1] != 1 {
		t.Fatalf("follow-up C %02X data % X", second.c, second.data)
	}
	if !bytes.Equal(second.data[4:9], testkit.Unhex(t, "00 10 15 03 24")) { // 10:00, the last quarter hour
		t.Errorf("last record time % X", second.data[4:9])
	}
	if again := follow(1); !bytes.Equal(again.data, second.data) {
		t.Error("repeating SEQ 1 gave another frame")
	}
	if beyond := follow(2); beyond.c != 0xD2 || !bytes.Equal(beyond.data, []byte{0x02}) {
		t.Errorf("SEQ past the end: C %02X data % X", beyond.c, beyond.data)
	}
	// 30 records from a given time: B1, B2, 92.
	req := append(diBytes(loadProfileDI), 0x30, 0x00, 0x00, 0x01, 0x03, 0x24)
	if f := request(m, frame{addr: m.addr, c: 0x11, data: req}); f.c != 0xB1 || !bytes.Equal(f.data[4:9], testkit.Unhex(t, "00 00 01 03 24")) {
		t.Fatalf("30 records: C %02X start % X", f.c, f.data[4:9])
	}
	if f := follow(1); f.c != 0xB2 || len(f.data) != 4+11*lpRecordSize+1 {
		t.Errorf("SEQ 1 of 2: C %02X len %d", f.c, len(f.data))
	}
	if f := follow(2); f.c != 0x92 || len(f.data) != 4+8*lpRecordSize+1 {
		t.Errorf("SEQ 2 of 2: C %02X len %d", f.c, len(f.data))
	}
}

func TestAnimation(t *testing.T) {
	clk := newFakeClock() // 10:00, tariff 2 (peak)
	m := NewMeter("1", V2007)
	m.SetTimeSource(clk.now)
	m.Set("power_kw", "2.0000")
	m.Set("energy_kwh", "100.00")
	m.Animate(Animation{Seed: 7, ClockDriftPPM: 100})
	prev := "100.00"
	for range 3600 {
		clk.add(time.Second)
		v, _ := m.Get("energy_kwh")
		if v < prev {
			t.Fatalf("energy went down: %s after %s", v, prev)
		}
		prev = v
		for _, item := range []string{"voltage_a_v", "voltage_b_v", "voltage_c_v"} {
			if v, _ := m.Get(item); v < "215.0" || v > "235.0" {
				t.Fatalf("%s = %s, outside 215-235 V", item, v)
			}
		}
		if v, _ := m.Get("freq_hz"); v < "49.95" || v > "50.05" {
			t.Fatalf("frequency %s outside 49.95-50.05", v)
		}
	}
	// 2 kW for one hour is exactly 2.00 kWh, counted in tariff 2 and in the combined register.
	for item, want := range map[string]string{"energy_kwh": "102.00", "energy_t2_kwh": "2.00", "energy_combined_kwh": "2.00", "energy_rev_kwh": "0.00"} {
		if v, _ := m.Get(item); v != want {
			t.Errorf("%s = %s, want %s", item, v, want)
		}
	}
	// 100 ppm fast over one hour: 360 ms ahead.
	if d := m.Clock().Sub(clk.now()); d != 360*time.Millisecond {
		t.Errorf("clock drift %v, want 360ms", d)
	}
	m.Set("power_kw", "-1.0")
	clk.add(time.Hour)
	if v, _ := m.Get("energy_rev_kwh"); v != "1.00" {
		t.Errorf("reverse energy %s, want 1.00", v)
	}
}

func TestTimeSync(t *testing.T) {
	clk := newFakeClock()
	m := NewMeter("1", V2007)
	m.SetTimeSource(clk.now)
	bcast := [6]byte{0x99, 0x99, 0x99, 0x99, 0x99, 0x99}
	sync := func(tm time.Time) result {
		return m.handle(frame{addr: bcast, c: 0x08, data: []byte{rs485.BCDByte(tm.Second()), rs485.BCDByte(tm.Minute()), rs485.BCDByte(tm.Hour()),
			rs485.BCDByte(tm.Day()), rs485.BCDByte(int(tm.Month())), rs485.BCDByte(tm.Year() % 100)}})
	}
	target := clk.now().Add(4*time.Minute + 59*time.Second)
	if r := sync(target); !r.syncApplied || r.reply != nil {
		t.Fatalf("4m59s correction: %+v", r)
	}
	if !m.Clock().Equal(target) {
		t.Fatalf("clock %v, want %v", m.Clock(), target)
	}
	if r := sync(target.Add(10 * time.Minute)); !r.syncRejected {
		t.Fatalf("10 min correction accepted")
	}
	if !m.Clock().Equal(target) {
		t.Fatalf("a rejected sync moved the clock to %v", m.Clock())
	}
}
