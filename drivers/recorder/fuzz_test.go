package recorder

import (
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzDecode: Decode never panics; it either refuses with a *FieldError
// that unwraps to one sentinel, or returns one reading of this device
// whose class and points fit the event, the same on a second run.
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
			return
		}
		if len(got) != 1 || got[0].Device != "zfy-001" || len(got[0].Values) == 0 {
			t.Fatalf("Decode(%q) = %+v", event, got)
		}
		if !slices.Contains(Events(), event) {
			t.Fatalf("accepted unknown event %q", event)
		}
		rd := got[0]
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
