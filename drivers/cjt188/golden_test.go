package cjt188

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/internal/testkit"
)

// golden is one public frame of testdata/frames.json (copied from
// /work/shared/vectors/frames.json with its source).
type golden struct {
	Protocol  string `json:"protocol"`
	Direction string `json:"direction"`
	Hex       string `json:"hex"`
	Meaning   struct {
		PreambleFE       int         `json:"preamble_FE"`
		LeadingNoise     int         `json:"leading_noise_bytes"`
		MeterType        string      `json:"meter_type"`
		AddressWire      string      `json:"address_wire"`
		Address          string      `json:"address"`
		Control          string      `json:"control"`
		Abnormal         bool        `json:"abnormal"`
		Function         string      `json:"function"`
		L                int         `json:"L"`
		DIWire           string      `json:"DI_wire"`
		DI               string      `json:"DI"`
		SER              string      `json:"SER"`
		Flow             json.Number `json:"current_cumulative_flow"`
		FlowUnit         string      `json:"current_unit"`
		Settle           json.Number `json:"settlement_day_cumulative_flow"`
		SettleUnit       string      `json:"settlement_unit"`
		RealTime         string      `json:"real_time"`
		ST               string      `json:"ST"`
		ChecksumExpected string      `json:"checksum_expected"`
		STDecoded        *struct {
			Valve      string `json:"valve"`
			BatteryLow bool   `json:"battery_low"`
		} `json:"ST_decoded(standard bits)"`
	} `json:"meaning"`
	Source        string `json:"source"`
	ChecksumOK    bool   `json:"checksum_ok"`
	ExpectedValid *bool  `json:"expected_valid"`
	// ExpectError, added in this package's copy, names the error a negative
	// vector must give when it is not the checksum.
	ExpectError string `json:"expect_error"`
}

func (g golden) valid() bool {
	return g.ChecksumOK && (g.ExpectedValid == nil || *g.ExpectedValid)
}

func loadGolden(t testing.TB) []golden {
	t.Helper()
	var gs []golden
	testkit.ReadJSON(t, "testdata/frames.json", &gs)
	if len(gs) == 0 {
		t.Fatal("testdata/frames.json has no frames")
	}
	return gs
}

// leadingHexByte reads "0x10 cold water meter" → 0x10.
func leadingHexByte(t *testing.T, s string) byte {
	t.Helper()
	f, _, _ := strings.Cut(s, " ")
	v, err := strconv.ParseUint(strings.TrimPrefix(f, "0x"), 16, 8)
	if err != nil {
		t.Fatalf("byte %q: %v", s, err)
	}
	return byte(v)
}

func splitAll(b []byte) (skipped, n int) {
	for len(b) > 0 {
		skip, n, err := Split(b)
		if err != nil || n > 0 {
			return skipped, n
		}
		if skip <= 0 {
			return skipped, 0
		}
		skipped += skip
		b = b[skip:]
	}
	return skipped, 0
}

func unitCode(t *testing.T, s string) byte {
	t.Helper()
	switch s {
	case "m3":
		return UnitCubicMetres
	case "L":
		return UnitLitre
	}
	t.Fatalf("unit %q not mapped in the test", s)
	return 0
}

func TestGoldenFrames(t *testing.T) {
	gs := loadGolden(t)
	var nValid, nNeg int
	for i, g := range gs {
		t.Run(fmt.Sprintf("%02d_%s", i, g.Meaning.Control), func(t *testing.T) {
			t.Logf("source: %s", g.Source)
			raw := testkit.Unhex(t, g.Hex)
			if !g.valid() {
				nNeg++
				checkNegative(t, g, raw)
				return
			}
			nValid++
			checkValid(t, g, raw)
		})
	}
	if nValid == 0 || nNeg == 0 {
		t.Errorf("%d valid and %d negative frames: want both", nValid, nNeg)
	}
}

func checkNegative(t *testing.T, g golden, raw []byte) {
	_, err := Decode(raw)
	if err == nil {
		t.Fatalf("Decode accepted a negative frame % X", raw)
	}
	var want error
	switch {
	case g.ExpectError == "short":
		want = ErrShort
	case g.ExpectError != "":
		t.Fatalf("expect_error %q not mapped in the test", g.ExpectError)
	case g.Meaning.ChecksumExpected != "" || !g.ChecksumOK:
		want = ErrChecksum
	}
	if want != nil && !errors.Is(err, want) {
		t.Errorf("Decode: %v, want %v", err, want)
	}
	if errors.Is(err, ErrChecksum) && !strings.Contains(err.Error(), "want "+strings.TrimPrefix(g.Meaning.ChecksumExpected, "0x")) {
		t.Errorf("error %q does not name the expected checksum %s", err, g.Meaning.ChecksumExpected)
	}
	if _, n := splitAll(raw); n != 0 {
		t.Errorf("Split found a %d-byte frame in a negative vector", n)
	}
}

func checkValid(t *testing.T, g golden, raw []byte) {
	m := g.Meaning
	skipped, n := splitAll(raw)
	if n == 0 {
		t.Fatalf("Split found no frame in % X", raw)
	}
	if skipped != m.LeadingNoise+m.PreambleFE || skipped+n != len(raw) {
		t.Errorf("Split: skipped %d, found %d of %d bytes; want skip %d", skipped, n, len(raw), m.LeadingNoise+m.PreambleFE)
	}
	raw = raw[m.LeadingNoise:]
	f, err := Decode(raw)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if f.Preamble != m.PreambleFE {
		t.Errorf("preamble %d, want %d", f.Preamble, m.PreambleFE)
	}
	if want := leadingHexByte(t, m.MeterType); f.Type != want {
		t.Errorf("type %02X, want %02X", f.Type, want)
	}
	if got := f.Addr.String(); got != m.Address {
		t.Errorf("address %s, want %s", got, m.Address)
	}
	if got := strings.ToUpper(hex.EncodeToString(f.Addr[:])); got != m.AddressWire {
		t.Errorf("address on the wire %s, want %s", got, m.AddressWire)
	}
	if a, err := ParseAddress(m.Address); err != nil || a != f.Addr {
		t.Errorf("ParseAddress(%s) = %v, %v", m.Address, a, err)
	}
	if want := leadingHexByte(t, m.Control); f.Control != want {
		t.Errorf("control %02X, want %02X", f.Control, want)
	}
	if want := leadingHexByte(t, m.Function); f.Function() != want {
		t.Errorf("function %02X, want %02X", f.Function(), want)
	}
	if f.IsReply() != (g.Direction == "response") || f.IsAbnormal() != m.Abnormal {
		t.Errorf("reply %v abnormal %v", f.IsReply(), f.IsAbnormal())
	}
	if len(f.Data) != m.L {
		t.Errorf("L=%d, want %d", len(f.Data), m.L)
	}
	if enc := Encode(f); !bytes.Equal(enc, raw) {
		t.Errorf("Encode(Decode(x)) = % X, want % X", enc, raw)
	}
	if len(f.Data) < 3 {
		t.Fatalf("DATA % X has no DI and SER", f.Data)
	}
	if got := fmt.Sprintf("%02X%02X", f.Data[0], f.Data[1]); got != m.DIWire {
		t.Errorf("DI on the wire %s, want %s", got, m.DIWire)
	}
	di, err := strconv.ParseUint(m.DI, 16, 16)
	if err != nil {
		t.Fatal(err)
	}
	if !hasDI(f.Data, uint16(di)) {
		t.Errorf("hasDI(% X, %s) = false", f.Data[:2], m.DI)
	}
	if want := leadingHexByte(t, m.SER); f.Data[2] != want {
		t.Errorf("SER %02X, want %02X", f.Data[2], want)
	}
	if m.Flow == "" {
		return
	}
	d, err := ParseMeterData(f.Data)
	if err != nil {
		t.Fatalf("ParseMeterData: %v", err)
	}
	for _, c := range []struct {
		name string
		b    [4]byte
		u    byte
		want json.Number
		unit string
	}{{"flow", d.Flow, d.FlowUnit, m.Flow, m.FlowUnit}, {"settlement flow", d.Settle, d.SettleUnit, m.Settle, m.SettleUnit}} {
		if c.u != unitCode(t, c.unit) {
			t.Errorf("%s unit %02X, want %s", c.name, c.u, c.unit)
		}
		v, ok, err := Volume(c.b[:], c.u)
		if err != nil || !ok {
			t.Fatalf("%s: Volume(% X, %02X) = %v, %v", c.name, c.b, c.u, ok, err)
		}
		want, err := drivers.ParseDecimal(c.want.String())
		if err != nil {
			t.Fatal(err)
		}
		if !v.Equal(want) {
			t.Errorf("%s = %s m³, want %s", c.name, v, want)
		}
		if _, exp, _ := v.Decimal(); exp != -2 {
			t.Errorf("%s exponent %d, want -2 (XXXXXX.XX m³)", c.name, exp)
		}
	}
	if got := d.ClockString(); got != m.RealTime {
		t.Errorf("clock %s, want %s", got, m.RealTime)
	}
	if got := d.StatusHex(); got != m.ST {
		t.Errorf("ST %s, want %s", got, m.ST)
	}
	if s := m.STDecoded; s != nil && (d.Valve() != s.Valve || d.BatteryLow() != s.BatteryLow) {
		t.Errorf("valve %s battery low %v, want %s %v", d.Valve(), d.BatteryLow(), s.Valve, s.BatteryLow)
	}
}
