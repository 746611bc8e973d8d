package dlt645

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
		AddressWire      string      `json:"address_wire"`
		Address          string      `json:"address"`
		Control          string      `json:"control"`
		Abnormal         bool        `json:"abnormal"`
		FollowUp         bool        `json:"follow_up"`
		Function         string      `json:"function"`
		L                int         `json:"L"`
		DataMinus33      string      `json:"data_minus33"`
		DI               string      `json:"DI"`
		Value            json.Number `json:"value"`
		Unit             string      `json:"unit"`
		Format           string      `json:"format"`
		ErrorWord        string      `json:"error_word"`
		Errors           []string    `json:"errors"`
		ReadAddressValue string      `json:"read_address_value"`
		ChecksumExpected string      `json:"checksum_expected"`
	} `json:"meaning"`
	Source        string `json:"source"`
	ChecksumOK    bool   `json:"checksum_ok"`
	ExpectedValid *bool  `json:"expected_valid"`
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

func parseByte(t *testing.T, s string) byte {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 8)
	if err != nil {
		t.Fatalf("byte %q: %v", s, err)
	}
	return byte(v)
}

// errorSentinel maps the English head of a documented error meaning.
func errorSentinel(s string) error {
	for _, m := range []struct {
		prefix string
		err    error
	}{
		{"other", ErrOther},
		{"no requested data", ErrNoData},
		{"password", ErrPassword},
		{"baud", ErrBaud},
		{"year time-zones", ErrYearZones},
		{"day periods", ErrDailyPeriods},
		{"tariffs", ErrTariffs},
	} {
		if strings.HasPrefix(s, m.prefix) {
			return m.err
		}
	}
	return nil
}

// splitAll runs Split over b as serialio.ReadFrame does: it returns the
// bytes skipped before the first frame and the frame's length (0: none).
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

func TestGoldenFrames(t *testing.T) {
	gs := loadGolden(t)
	var nValid, nNeg int
	for i, g := range gs {
		name := fmt.Sprintf("%02d_%s_%s", i, g.Protocol, g.Meaning.Control)
		t.Run(name, func(t *testing.T) {
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
	want := error(nil)
	if g.Meaning.ChecksumExpected != "" || !g.ChecksumOK {
		want = ErrChecksum
	}
	if want != nil && !errors.Is(err, want) {
		t.Errorf("Decode: %v, want %v", err, want)
	}
	if strings.Contains(err.Error(), "%!") {
		t.Errorf("badly formatted error: %v", err)
	}
	if g.Meaning.ChecksumExpected != "" {
		if !strings.Contains(err.Error(), "want "+strings.TrimPrefix(g.Meaning.ChecksumExpected, "0x")) {
			t.Errorf("error %q does not name the expected checksum %s", err, g.Meaning.ChecksumExpected)
		}
	}
	if _, n := splitAll(raw); n != 0 {
		t.Errorf("Split found a %d-byte frame in a negative vector", n)
	}
}

func checkValid(t *testing.T, g golden, raw []byte) {
	m := g.Meaning
	v := V2007
	if strings.HasSuffix(g.Protocol, "1997") {
		v = V1997
	}
	skipped, n := splitAll(raw)
	if n == 0 {
		t.Fatalf("Split found no frame in % X", raw)
	}
	if skipped != m.PreambleFE || skipped+n != len(raw) {
		t.Errorf("Split: skipped %d and found %d bytes of %d, want skip %d (the FE preamble)", skipped, n, len(raw), m.PreambleFE)
	}
	f, err := Decode(raw)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if f.Preamble != m.PreambleFE {
		t.Errorf("preamble %d, want %d", f.Preamble, m.PreambleFE)
	}
	if got := f.Addr.String(); got != m.Address {
		t.Errorf("address %s, want %s", got, m.Address)
	}
	if got := strings.ToUpper(hex.EncodeToString(f.Addr[:])); got != m.AddressWire {
		t.Errorf("address on the wire %s, want %s", got, m.AddressWire)
	}
	if a, err := ParseAddress(m.Address); err != nil || a != f.Addr {
		t.Errorf("ParseAddress(%s) = %v, %v; want %v", m.Address, a, err, f.Addr)
	}
	if want := parseByte(t, m.Control); f.Control != want {
		t.Errorf("control %02X, want %02X", f.Control, want)
	}
	if want := parseByte(t, m.Function); f.Function() != want {
		t.Errorf("function %02X, want %02X", f.Function(), want)
	}
	if f.IsReply() != (g.Direction == "response") || f.IsAbnormal() != m.Abnormal || f.HasFollowUp() != m.FollowUp {
		t.Errorf("reply/abnormal/follow-up = %v/%v/%v, want %v/%v/%v", f.IsReply(), f.IsAbnormal(), f.HasFollowUp(),
			g.Direction == "response", m.Abnormal, m.FollowUp)
	}
	if len(f.Data) != m.L {
		t.Errorf("L=%d, want %d", len(f.Data), m.L)
	}
	if want := testkit.Unhex(t, m.DataMinus33); !bytes.Equal(f.Data, want) {
		t.Errorf("DATA−33 % X, want % X", f.Data, want)
	}
	if enc := Encode(f); !bytes.Equal(enc, raw) {
		t.Errorf("Encode(Decode(x)) = % X, want % X", enc, raw)
	}
	if err := f.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if m.DI != "" {
		dl := v.diLen()
		if len(f.Data) < dl {
			t.Fatalf("DATA shorter than a DI")
		}
		var di uint32
		for i := dl - 1; i >= 0; i-- {
			di = di<<8 | uint32(f.Data[i])
		}
		it := Item{DI: di}
		if got := it.DIString(v); got != m.DI {
			t.Errorf("DI %s, want %s", got, m.DI)
		}
		if m.Value != "" {
			checkValue(t, v, di, f.Data[dl:], g)
		}
	}
	if m.ErrorWord != "" {
		checkAbnormal(t, f, g)
	} else if err := f.Err(); err != nil {
		t.Errorf("Err() = %v for a normal frame", err)
	}
	if m.ReadAddressValue != "" {
		if len(f.Data) != 6 {
			t.Fatalf("read-address reply with %d DATA bytes", len(f.Data))
		}
		if got := Address(f.Data).String(); got != m.ReadAddressValue {
			t.Errorf("address in DATA %s, want %s", got, m.ReadAddressValue)
		}
	}
}

func checkValue(t *testing.T, v Version, di uint32, value []byte, g golden) {
	it, ok := Lookup(v, di)
	if !ok {
		t.Fatalf("DI %s is not in the %s catalogue", g.Meaning.DI, v)
	}
	if it.Unit != g.Meaning.Unit || it.Format != g.Meaning.Format {
		t.Errorf("item unit %q format %q, want %q %q", it.Unit, it.Format, g.Meaning.Unit, g.Meaning.Format)
	}
	vals, err := it.Values(value)
	if err != nil {
		t.Fatalf("Values(% X): %v", value, err)
	}
	if len(vals) != 1 {
		t.Fatalf("Values(% X) = %v, want one point", value, vals)
	}
	want, err := drivers.ParseDecimal(g.Meaning.Value.String())
	if err != nil {
		t.Fatal(err)
	}
	got := vals[it.Points[0]]
	if !got.Equal(want) {
		t.Errorf("%s = %s, want %s", it.Points[0], got, want)
	}
	if _, exp, ok := got.Decimal(); !ok || exp != it.Exp() {
		t.Errorf("%s is %v with exponent %d, want a decimal with exponent %d (format %s)", it.Points[0], got.Kind(), exp, it.Exp(), it.Format)
	}
}

func checkAbnormal(t *testing.T, f Frame, g golden) {
	var ab *AbnormalError
	if !errors.As(f.Err(), &ab) {
		t.Fatalf("Err() = %v, want *AbnormalError", f.Err())
	}
	if want := parseByte(t, g.Meaning.ErrorWord); ab.Bits != want || ab.Control != f.Control {
		t.Errorf("AbnormalError{%02X, %02X}, want {%02X, %02X}", ab.Control, ab.Bits, f.Control, want)
	}
	if !errors.Is(ab, ErrAbnormal) {
		t.Error("not ErrAbnormal")
	}
	if len(ab.Errors()) != len(g.Meaning.Errors) {
		t.Errorf("Errors() = %v, want %d: %v", ab.Errors(), len(g.Meaning.Errors), g.Meaning.Errors)
	}
	for _, e := range g.Meaning.Errors {
		s := errorSentinel(e)
		if s == nil {
			t.Errorf("no sentinel for documented error %q", e)
			continue
		}
		if !errors.Is(ab, s) {
			t.Errorf("%v is not %v", ab, s)
		}
	}
}
