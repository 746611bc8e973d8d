package kiosk

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/internal/fieldmsg"
)

// FuzzDecode: Decode never panics; it refuses with a *FieldError that
// unwraps to a sentinel (never echoing a refused ID), or returns one
// reading of this device for a known event; Metrics and LongWaits still work
// on whatever state it left.
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
	f.Add("ticket.called", []byte(`{"ticket_no":"A1","called_at":1732950000000,"window_no":1e3}`))
	k, err := New(Config{Device: "hall-kiosk-1", WaitAlarm: time.Minute, Now: func() time.Time { return testNow }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, event string, payload []byte) {
		got, err := k.Decode(event, payload)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || sentinelName(err)[0] != 'E' || fe.Reason == "" {
				t.Fatalf("error %T %v", err, err)
			}
			if errors.Is(err, ErrPersonalData) && fe.Value != "<redacted>" {
				t.Fatalf("personal data echoed: %v", err)
			}
			if s := err.Error(); len(s) > 512 || !utf8.ValidString(s) {
				t.Fatalf("error text of %d bytes, valid UTF-8 %v: %q", len(s), utf8.ValidString(s), s)
			}
			return
		}
		rd := got[0]
		_, hasOff := rd.Values["clock_offset_ms"]
		if skewed := rd.Quality&drivers.QualityClockSkew != 0; skewed != hasOff {
			t.Fatalf("quality %b with clock_offset_ms %v", rd.Quality, hasOff)
		}
		if rd.DeviceTime && !fieldmsg.Plausible(rd.Time.UnixMilli()) {
			t.Fatalf("implausible device time %v kept", rd.Time)
		}
		if _, ok := rd.Values["invalid"]; ok != (rd.Quality&drivers.QualityInvalidFields != 0) {
			t.Fatalf("quality %b with invalid point %v", rd.Quality, ok)
		}
		if len(got) != 1 || got[0].Device != "hall-kiosk-1" || len(got[0].Values) == 0 || !slices.Contains(Events(), event) {
			t.Fatalf("Decode(%q) = %+v", event, got)
		}
		for _, v := range got[0].Values {
			if s, ok := v.AsText(); ok && ContainsResidentID(s) {
				t.Fatalf("an ID passed: %q", s)
			}
		}
		if strings.Contains(string(payload), "id_card") && !strings.Contains(string(payload), `\`) {
			t.Fatalf("an id_card key passed: %q", payload)
		}
		k.Metrics(testNow.Add(time.Hour))
		k.LongWaits(testNow.Add(time.Hour))
	})
}
