package kiosk

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.json from the decoder's output (review the diff!)")

// goldenCase is one payload file with what Decode must make of it.
type goldenCase struct {
	File  string `json:"file"`
	Event string `json:"event"`
	// Now is the gateway's clock for this case (RFC 3339); "" = testNow.
	Now      string      `json:"now,omitempty"`
	Want     *goldenRead `json:"want,omitempty"`
	Sentinel string      `json:"sentinel,omitempty"`
	Error    string      `json:"error,omitempty"`
}

type goldenRead struct {
	Class      string            `json:"class"`
	Time       string            `json:"time,omitempty"` // RFC 3339, "" = zero
	DeviceTime bool              `json:"device_time"`
	Quality    uint32            `json:"quality,omitempty"`
	Values     map[string]string `json:"values"`
}

// testNow is the gateway clock of the golden tests.
var testNow = time.Date(2024, 11, 30, 7, 12, 0, 0, time.UTC)

func newTest(t testing.TB) *Kiosk {
	t.Helper()
	return newAt(t, testNow)
}

// newAt returns a fresh test kiosk with the gateway's clock stopped at now.
func newAt(t testing.TB, now time.Time) *Kiosk {
	t.Helper()
	r, err := New(Config{Device: "hall-kiosk-1", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// showValue renders a value as kind:text.
func showValue(v drivers.Value) string {
	kinds := map[drivers.Kind]string{drivers.KindDecimal: "dec", drivers.KindInt: "int", drivers.KindFloat: "float",
		drivers.KindBool: "bool", drivers.KindText: "text"}
	return kinds[v.Kind()] + ":" + v.String()
}

func toGolden(rd drivers.Reading) *goldenRead {
	g := &goldenRead{Class: rd.Class.String(), DeviceTime: rd.DeviceTime, Quality: rd.Quality, Values: map[string]string{}}
	if !rd.Time.IsZero() {
		g.Time = rd.Time.UTC().Format(time.RFC3339Nano)
	}
	for k, v := range rd.Values {
		g.Values[k] = showValue(v)
	}
	return g
}

func sentinelName(err error) string {
	for _, s := range []struct {
		name string
		err  error
	}{{"ErrMalformed", ErrMalformed}, {"ErrSchema", ErrSchema},
		{"ErrUnknownEvent", ErrUnknownEvent}, {"ErrWrongDevice", ErrWrongDevice}, {"ErrPersonalData", ErrPersonalData}} {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return "unknown: " + err.Error()
}

func TestGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := range cases {
		c := &cases[i]
		seen[c.File] = true
		t.Run(c.File, func(t *testing.T) {
			payload, err := os.ReadFile(filepath.Join("testdata", c.File))
			if err != nil {
				t.Fatal(err)
			}
			now := testNow
			if c.Now != "" {
				if now, err = time.Parse(time.RFC3339, c.Now); err != nil {
					t.Fatal(err)
				}
			}
			got, err := newAt(t, now).Decode(c.Event, payload) // a fresh kiosk: no state
			if *update {
				c.Want, c.Sentinel, c.Error = nil, "", ""
				if err != nil {
					c.Sentinel, c.Error = sentinelName(err), err.Error()
				} else {
					c.Want = toGolden(got[0])
				}
				return
			}
			valid := strings.HasPrefix(c.File, "valid/")
			switch {
			case valid && err != nil:
				t.Fatalf("Decode: %v", err)
			case valid:
				if len(got) != 1 {
					t.Fatalf("got %d readings, want 1", len(got))
				}
				if got[0].Device != "hall-kiosk-1" {
					t.Errorf("device %q", got[0].Device)
				}
				g := toGolden(got[0])
				gj, _ := json.MarshalIndent(g, "", " ")
				wj, _ := json.MarshalIndent(c.Want, "", " ")
				if string(gj) != string(wj) {
					t.Errorf("reading\n got %s\nwant %s", gj, wj)
				}
			case err == nil:
				t.Fatalf("Decode accepted an invalid payload: %+v", got)
			default:
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Errorf("error %T is not a *FieldError", err)
				}
				if sentinelName(err) != c.Sentinel || err.Error() != c.Error {
					t.Errorf("error\n got %s: %v\nwant %s: %s", sentinelName(err), err, c.Sentinel, c.Error)
				}
			}
		})
	}
	// Every payload in testdata is in the manifest.
	for _, dir := range []string{"valid", "invalid"} {
		files, _ := os.ReadDir(filepath.Join("testdata", dir))
		for _, f := range files {
			if !seen[dir+"/"+f.Name()] {
				t.Errorf("testdata/%s/%s is not in golden.json", dir, f.Name())
			}
		}
	}
	if *update {
		sort.Slice(cases, func(i, j int) bool { return cases[i].File < cases[j].File })
		b, _ := json.MarshalIndent(cases, "", " ")
		if err := os.WriteFile("testdata/golden.json", append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
