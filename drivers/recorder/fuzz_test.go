package recorder

import (
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/internal/fieldmsg"
)

// checkReading checks what holds for every reading Decode returns.
func checkReading(t *testing.T, rd drivers.Reading) {
	t.Helper()
	_, hasOff := rd.Values["clock_offset_ms"]
	if skewed := rd.Quality&drivers.QualityClockSkew != 0; skewed != hasOff {
		t.Fatalf("quality %b with clock_offset_ms %v", rd.Quality, hasOff)
	}
	if rd.DeviceTime && !fieldmsg.Plausible(rd.Time.UnixMilli()) {
		t.Fatalf("implausible device time %v kept", rd.Time)
	}
	for _, p := range []string{"sha256", "sm3", "md5"} {
		if s, ok := rd.Values[p].AsText(); ok && s != strings.ToLower(s) {
			t.Fatalf("%s = %q not in lower case", p, s)
		}
	}
}

// FuzzDecode: Decode never panics; it either refuses with a *FieldError
// that unwraps to one sentinel and reads as a short text, or returns one
// reading of this device whose class and points fit the event (digests in
// lower case, a device time plausible, clock_offset_ms exactly when the
// reading is flagged skewed), the same on a second run.
func FuzzDecode(f *testing.F) {
	raw, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		f.Fatal(err)
	}
	var cases []goldenCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		f.Fatal(err)
	}
	for _, c := range cases {
		b, err := os.ReadFile(filepath.Join("testdata", c.File))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(c.Event, b)
	}
	f.Add("evidence.file", []byte(`{"payload":{}}`))
	f.Add("alarm.sos", []byte{0xbf, 0x63, 'l', 'a', 't', 0xfb, 0x40, 0x3f, 0x4c, 0xcc, 0xcc, 0xcc, 0xcc, 0xcd, 0xff})
	r := newTest(f)
	f.Fuzz(func(t *testing.T, event string, payload []byte) {
		got, err := r.Decode(event, payload)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %v is not a *FieldError", err, err)
			}
			if n := sentinelName(err); n[0] != 'E' {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			if fe.Reason == "" {
				t.Fatalf("error %v has no reason", err)
			}
			if s := err.Error(); len(s) > 512 || !utf8.ValidString(s) {
				t.Fatalf("error text of %d bytes, valid UTF-8 %v: %q", len(s), utf8.ValidString(s), s)
			}
			return
		}
		if len(got) != 1 || got[0].Device != "zfy-001" || len(got[0].Values) == 0 {
			t.Fatalf("Decode(%q) = %+v", event, got)
		}
		if !slices.Contains(Events(), event) {
			t.Fatalf("accepted unknown event %q", event)
		}
		rd := got[0]
		checkReading(t, rd)
		for _, p := range []string{"lat", "lon"} {
			if v, ok := rd.Values[p]; ok {
				lim := int64(90)
				if p == "lon" {
					lim = 180
				}
				if r := v.Rat(); r == nil || r.Num().CmpAbs(new(big.Int).Mul(r.Denom(), bigInt(lim))) > 0 {
					t.Fatalf("%s = %v accepted", p, v)
				}
			}
		}
		again, err := r.Decode(event, payload)
		if err != nil || len(again) != 1 || len(again[0].Values) != len(rd.Values) {
			t.Fatalf("second decode differs: %v %+v", err, again)
		}
		for k, v := range rd.Values {
			if !again[0].Values[k].Equal(v) {
				t.Fatalf("second decode: %s = %v, first %v", k, again[0].Values[k], v)
			}
		}
	})
}
