package cjt188sim

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/internal/testkit"
)

// vector is one public frame from testdata/frames.json (copied from
// shared/vectors/frames.json; each names its source).
type vector struct {
	Hex           string `json:"hex"`
	Source        string `json:"source"`
	Direction     string `json:"direction"`
	ChecksumOK    bool   `json:"checksum_ok"`
	ExpectedValid *bool  `json:"expected_valid"`
	Meaning       struct {
		PreambleFE  int    `json:"preamble_FE"`
		Noise       int    `json:"leading_noise_bytes"`
		MeterType   string `json:"meter_type"`
		AddressWire string `json:"address_wire"`
		Control     string `json:"control"`
		L           int    `json:"L"`
		DIWire      string `json:"DI_wire"`
		SER         string `json:"SER"`
	} `json:"meaning"`
}

func (v vector) valid() bool { return v.ChecksumOK && (v.ExpectedValid == nil || *v.ExpectedValid) }

func loadVectors(t testing.TB) []vector {
	t.Helper()
	var f struct{ Frames []vector }
	testkit.ReadJSON(t, "testdata/frames.json", &f)
	if len(f.Frames) == 0 {
		t.Fatal("testdata/frames.json has no frames")
	}
	return f.Frames
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

func hexByte(t *testing.T, s string) byte {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.Fields(s)[0], "0x"), 16, 8)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return byte(v)
}

// Every public frame is found with its documented fields; every broken one
// is rejected.
func TestScanPublicFrames(t *testing.T) {
	for _, v := range loadVectors(t) {
		buf := testkit.Unhex(t, v.Hex)
		f, start, end, _, ok := scan(buf)
		if !v.valid() {
			if ok {
				t.Errorf("%s: accepted a broken frame (%s)", v.Hex, v.Source)
			}
			continue
		}
		if !ok {
			t.Errorf("%s: not parsed (%s)", v.Hex, v.Source)
			continue
		}
		if start != v.Meaning.Noise+v.Meaning.PreambleFE || end != len(buf) {
			t.Errorf("%s: frame at [%d:%d]", v.Hex, start, end)
		}
		if f.typ != hexByte(t, v.Meaning.MeterType) || f.c != hexByte(t, v.Meaning.Control) || len(f.data) != v.Meaning.L {
			t.Errorf("%s: T %02X C %02X L %d", v.Hex, f.typ, f.c, len(f.data))
		}
		if got := strings.ToUpper(hex.EncodeToString(f.addr[:])); got != v.Meaning.AddressWire {
			t.Errorf("%s: address %s, want %s", v.Hex, got, v.Meaning.AddressWire)
		}
		if got := strings.ToUpper(hex.EncodeToString(f.data[:2])); got != v.Meaning.DIWire || f.data[2] != hexByte(t, v.Meaning.SER) {
			t.Errorf("%s: DI %s SER %02X", v.Hex, got, f.data[2])
		}
		if re := f.encode(0); !bytes.Equal(re, buf[start:]) {
			t.Errorf("%s: re-encodes as % X", v.Hex, re)
		}
	}
}

func handleHex(t *testing.T, m *Meter, req string) []byte {
	t.Helper()
	f, _, _, _, ok := scan(testkit.Unhex(t, req))
	if !ok {
		t.Fatalf("request %s does not parse", req)
	}
	return m.handle(f).reply
}

// The simulator reproduces public reply frames byte for byte.
func TestGoldenReplies(t *testing.T) {
	// The 901F reply of a meter with zero flow and clock 2017-01-09 17:20:06.
	req := "68 10 88 05 27 10 15 20 00 01 03 90 1F 01 25 16"
	want := "68 10 88 05 27 10 15 20 00 81 16 90 1F 01 00 00 00 00 2C 00 00 00 00 2C 06 20 17 09 01 17 20 00 00 8E 16"
	inVectors(t, req)
	inVectors(t, want)
	m := NewMeter("00201510270588", ColdWater)
	m.SetPreamble(0)
	base := time.Date(2017, 1, 9, 17, 20, 6, 0, time.Local)
	m.SetTimeSource(func() time.Time { return base })
	m.Set("clock", "2017-01-09 17:20:06")
	if got := handleHex(t, m, req); !bytes.Equal(got, testkit.Unhex(t, want)) {
		t.Errorf("901F reply\n got % X\nwant % X", got, testkit.Unhex(t, want))
	}

	// Read address through the wildcard (3 FE, as the public reply).
	req = "FE FE FE 68 AA AA AA AA AA AA AA AA 03 03 81 0A 00 49 16"
	want = "FE FE FE 68 10 12 00 00 00 00 00 00 83 03 81 0A 00 9B 16"
	inVectors(t, req)
	inVectors(t, want)
	if got := handleHex(t, NewMeter("00000000000012", ColdWater), req); !bytes.Equal(got, testkit.Unhex(t, want)) {
		t.Errorf("810A reply\n got % X\nwant % X", got, testkit.Unhex(t, want))
	}

	// 1000.10 m³ with ST 00 FF: all but the (all-zero, impossible) clock and the CS.
	want = "FE FE FE 68 10 12 00 00 00 00 00 00 81 16 90 1F 00 10 00 10 00 2C 10 00 10 00 2C 00 00 00 00 00 00 00 00 FF 67 16"
	inVectors(t, want)
	m = NewMeter("00000000000012", ColdWater)
	m.Set("flow_m3", "1000.1")
	m.Set("settle_m3", "1000.10")
	m.Set("st1", "FF")
	got, w := handleHex(t, m, "68 10 12 00 00 00 00 00 00 01 03 90 1F 00 3D 16"), testkit.Unhex(t, want)
	if len(got) != len(w) || !bytes.Equal(got[:27], w[:27]) || !bytes.Equal(got[34:36], w[34:36]) {
		t.Errorf("1000.1 m³ reply\n got % X\nwant % X (clock and CS aside)", got, w)
	}

	// DI sent 1F 90: the reply uses the same order; values 785634.12 / 896745.23, valve closed.
	want = "68 10 06 00 04 00 00 00 00 81 16 1F 90 00 12 34 56 78 2C 23 45 67 89 2C 0A 0F 0C 17 0B 11 14 21 84 9D 16"
	inVectors(t, want)
	m = NewMeter("00000000040006", ColdWater)
	m.SetPreamble(0)
	m.Set("flow_m3", "785634.12")
	m.Set("settle_m3", "896745.23")
	m.Set("valve", "closed")
	got = m.handle(frame{typ: 0x10, addr: m.addr, c: 0x01, data: []byte{0x1F, 0x90, 0x00}}).reply
	if w := testkit.Unhex(t, want); !bytes.Equal(got[:24], w[:24]) || got[31]&0x03 != w[31]&0x03 {
		t.Errorf("1F 90 reply\n got % X\nwant % X (clock, vendor ST bits and CS aside)", got, w)
	}
}

// Public requests are answered by the meter they address.
func TestPublicRequestsAnswered(t *testing.T) {
	for _, c := range []struct {
		req, addr string
		replyC    byte
	}{
		{"FE FE FE 68 10 AA AA AA AA AA AA AA 01 03 90 1F 01 D2 16", "12345678901234", 0x81},
		{"68 10 AA AA AA AA AA AA AA 01 03 90 1F 90 61 16", "12345678901234", 0x81},
		{"FE FE 68 10 AA AA AA AA AA AA AA 01 03 90 1F AA 7B 16", "12345678901234", 0x81},
		{"68 10 12 00 00 00 00 00 00 01 03 90 1F 00 3D 16", "00000000000012", 0x81},
		{"FE FE FE 68 AA AA AA AA AA AA AA AA 03 03 81 0A 00 49 16", "12345678901234", 0x83},
	} {
		inVectors(t, c.req)
		rep := handleHex(t, NewMeter(c.addr, ColdWater), c.req)
		f, _, _, _, ok := scan(rep)
		if !ok || f.c != c.replyC {
			t.Errorf("%s: reply % X", c.req, rep)
		}
		if rep := handleHex(t, NewMeter(c.addr, HotWater), c.req); rep != nil && !strings.Contains(c.req, "68 AA") {
			t.Errorf("%s: a hot-water meter answered a cold-water request", c.req)
		}
	}
}

func read901F(t *testing.T, m *Meter, ser byte) frame {
	t.Helper()
	f, _, _, _, ok := scan(m.handle(frame{typ: m.typ, addr: m.addr, c: 0x01, data: []byte{0x90, 0x1F, ser}}).reply)
	if !ok {
		t.Fatal("no valid 901F reply")
	}
	return f
}

func TestUnitsStatusAndValve(t *testing.T) {
	m := NewMeter("1", ColdWater)
	m.Set("flow_m3", "12.34567")
	if f := read901F(t, m, 7); !bytes.Equal(f.data[3:8], testkit.Unhex(t, "34 12 00 00 2C")) || f.data[2] != 7 {
		t.Errorf("m³: % X", f.data)
	}
	if err := m.SetUnit(UnitLitre); err != nil {
		t.Fatal(err)
	}
	if f := read901F(t, m, 8); !bytes.Equal(f.data[3:8], testkit.Unhex(t, "67 45 23 01 29")) {
		t.Errorf("L: % X", f.data)
	}
	if err := m.SetUnit(0x05); !errors.Is(err, ErrUnit) {
		t.Errorf("kWh accepted: %v", err)
	}
	m.Set("battery_low", "true")
	m.Set("valve", "fault")
	if f := read901F(t, m, 9); f.data[20] != 0x07 {
		t.Errorf("ST0 %02X, want 07 (valve fault, battery low)", f.data[20])
	}
	m.Set("valve", "open")
	m.Set("battery_low", "false")
	valve := func(cmd byte) frame {
		f, _, _, _, _ := scan(m.handle(frame{typ: m.typ, addr: m.addr, c: 0x04, data: []byte{0xA0, 0x17, 0x33, cmd}}).reply)
		return f
	}
	if f := valve(0x99); f.c != 0x84 || !bytes.Equal(f.data, []byte{0xA0, 0x17, 0x33, 0x01, 0x00}) {
		t.Errorf("close: C %02X % X", f.c, f.data)
	}
	if v, _ := m.Get("valve"); v != ValveClosed {
		t.Errorf("valve %s after close", v)
	}
	if f := valve(0x55); f.c != 0x84 || f.data[3] != 0x00 {
		t.Errorf("open: C %02X % X", f.c, f.data)
	}
	if f := valve(0x12); f.c != 0xC4 {
		t.Errorf("unknown command: C %02X", f.c)
	}
	f, _, _, _, _ := scan(m.handle(frame{typ: m.typ, addr: m.addr, c: 0x01, data: []byte{0x81, 0x05, 0x01}}).reply)
	if f.c != 0xC1 || !bytes.Equal(f.data, []byte{0x81, 0x05, 0x01, 0x00}) {
		t.Errorf("unknown DI: C %02X % X", f.c, f.data)
	}
	for _, c := range []struct{ item, val string }{
		{"flow_m3", "1.000001"}, {"flow_m3", "-1"}, {"flow_m3", "1000000"}, {"valve", "ajar"}, {"battery_low", "maybe"}, {"st1", "123"},
	} {
		if err := m.SetValue(c.item, c.val); !errors.Is(err, ErrValue) {
			t.Errorf("Set(%q, %q) = %v", c.item, c.val, err)
		}
	}
	if err := m.SetValue("pressure", "1"); !errors.Is(err, ErrItem) {
		t.Errorf("unknown item: %v", err)
	}
}

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

func TestAnimationAndSettlement(t *testing.T) {
	clk := &fakeClock{t: time.Date(2024, 1, 31, 22, 0, 0, 0, time.Local)}
	m := NewMeter("1", ColdWater)
	m.SetTimeSource(clk.now)
	m.Set("flow_m3", "10")
	m.Animate(Animation{FlowMLPerHour: 1500}) // 1.5 L/h
	for range 4 * 60 {
		clk.add(time.Minute)
	}
	// 4 h at 1.5 L/h = 6 L exactly; 2 h of it before midnight of the 1st (3 L).
	if v, _ := m.Get("flow_m3"); v != "10.00600" {
		t.Errorf("flow %s, want 10.00600", v)
	}
	if v, _ := m.Get("settle_m3"); v != "10.00300" {
		t.Errorf("settlement flow %s, want 10.00300 (taken at 00:00 on the 1st)", v)
	}
	m.Set("valve", "closed")
	clk.add(time.Hour)
	if v, _ := m.Get("flow_m3"); v != "10.00600" {
		t.Errorf("flow %s grew with the valve closed", v)
	}
}

func TestOldSER(t *testing.T) {
	m := NewMeter("1", ColdWater)
	m.SetFault(OldSER)
	if f := read901F(t, m, 0x10); f.data[2] != 0x0F {
		t.Errorf("first reply SER %02X, want 0F", f.data[2])
	}
	if f := read901F(t, m, 0x11); f.data[2] != 0x10 {
		t.Errorf("second reply SER %02X, want 10 (the previous request's)", f.data[2])
	}
	m.SetFault(None)
	if f := read901F(t, m, 0x12); f.data[2] != 0x12 {
		t.Errorf("after None SER %02X", f.data[2])
	}
}

// FuzzRequest feeds arbitrary bytes to the request parser and a meter:
// nothing panics, and whatever is accepted re-encodes to the same bytes.
func FuzzRequest(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(testkit.Unhex(f, v.Hex))
	}
	f.Add(frame{typ: 0xAA, addr: [7]byte{0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA}, c: 0x04, data: []byte{0xA0, 0x17, 1, 0x99}}.encode(2))
	f.Add(frame{typ: 0x10, addr: [7]byte{0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA}, c: 0x01, data: []byte{0x90}}.encode(0))
	m := NewMeter("AAAAAAAAAAAAAA", ColdWater)
	m.SetFault(Garbage(0.5))
	f.Fuzz(func(t *testing.T, buf []byte) {
		for len(buf) > 0 {
			fr, start, end, keep, ok := scan(buf)
			if !ok {
				if keep < 0 || keep > len(buf) {
					t.Fatalf("keep %d of %d", keep, len(buf))
				}
				return
			}
			if start < 0 || end <= start || end > len(buf) {
				t.Fatalf("frame at [%d:%d] of %d", start, end, len(buf))
			}
			if re := fr.encode(0); !bytes.Equal(re, buf[start:end]) {
				t.Fatalf("accepted % X, re-encodes as % X", buf[start:end], re)
			}
			m.handle(fr)
			buf = buf[end:]
		}
	})
}
