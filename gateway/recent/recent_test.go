package recent

import (
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
)

func at(s *Store, t time.Time) { s.now = func() time.Time { return t } }

func TestLastValuesAreExactAndNewest(t *testing.T) {
	s := New(Options{})
	t0 := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	at(s, t0)
	s.Observe([]drivers.Reading{{Device: "m1", Time: t0, Values: map[string]drivers.Value{
		"energy_kwh": drivers.Dec(12345678, -2), "state": drivers.Text("run"),
	}}})
	s.Observe([]drivers.Reading{{Device: "m1", Time: t0.Add(-time.Minute), Values: map[string]drivers.Value{
		"energy_kwh": drivers.Dec(1, 0), // older: ignored
	}}})
	last := s.Last("m1")
	if len(last) != 2 || last[0].Name != "energy_kwh" || last[0].Value != "123456.78" || !last[0].Numeric {
		t.Fatalf("last = %+v", last)
	}
	if last[1].Name != "state" || last[1].Value != "run" || last[1].Numeric {
		t.Fatalf("text point = %+v", last[1])
	}
	if got := s.Series("m1", "state"); len(got) != 0 {
		t.Fatalf("a text point has samples: %v", got)
	}
	if got := s.Last("other"); len(got) != 0 {
		t.Fatalf("unknown device has points: %v", got)
	}
}

func TestSeriesKeepsOneSamplePerStepForTheWindow(t *testing.T) {
	s := New(Options{Window: time.Minute, Step: 10 * time.Second})
	t0 := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	for i := range 300 { // 5 minutes, one reading a second
		now := t0.Add(time.Duration(i) * time.Second)
		at(s, now)
		s.Observe([]drivers.Reading{{Device: "m1", Values: map[string]drivers.Value{"p_kw": drivers.Int(int64(i))}}})
	}
	got := s.Series("m1", "p_kw")
	// The window is 60 s: slots 240..290 plus the open one (299).
	if len(got) < 6 || len(got) > 7 {
		t.Fatalf("%d samples: %v", len(got), got)
	}
	if last := got[len(got)-1]; last.V != 299 {
		t.Fatalf("newest sample %v, want 299", last)
	}
	for i := 1; i < len(got); i++ {
		if got[i].T-got[i-1].T < 1000 || got[i].T/10000 == got[i-1].T/10000 {
			t.Fatalf("two samples in one step: %v", got)
		}
	}
	if len(s.series[key{"m1", "p_kw"}].samples) > s.max {
		t.Fatalf("kept %d samples, bound %d", len(s.series[key{"m1", "p_kw"}].samples), s.max)
	}
}

func TestMaxSeriesBoundsMemory(t *testing.T) {
	s := New(Options{MaxSeries: 3})
	s.Observe([]drivers.Reading{{Device: "a", Values: map[string]drivers.Value{
		"p1": drivers.Int(1), "p2": drivers.Int(2), "p3": drivers.Int(3), "p4": drivers.Int(4), "p5": drivers.Int(5),
	}}})
	if n := len(s.Last("a")); n != 3 {
		t.Fatalf("%d series kept, want 3", n)
	}
}

func TestFloat(t *testing.T) {
	for _, c := range []struct {
		v    drivers.Value
		want float64
		ok   bool
	}{
		{drivers.Dec(-1234, -3), -1.234, true},
		{drivers.Int(7), 7, true},
		{drivers.Bool(true), 1, true},
		{drivers.Float(2.5), 2.5, true},
		{drivers.Text("x"), 0, false},
	} {
		got, ok := Float(c.v)
		if got != c.want || ok != c.ok {
			t.Errorf("Float(%v) = %v, %v; want %v, %v", c.v, got, ok, c.want, c.ok)
		}
	}
}

// An alarm record names its device but carries the alarm's own points
// (rule, severity, value…): townlink status and the local page showed
// them as the device's last values and charted them.
func TestAlarmRecordsAreNotDeviceValues(t *testing.T) {
	s := New(Options{})
	t0 := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	at(s, t0)
	s.Observe([]drivers.Reading{
		{Device: "plant", Time: t0, Values: map[string]drivers.Value{"cod_mg_l": drivers.Dec(381, -1)}},
		{Device: "plant", Class: drivers.Alarm, Time: t0, Values: map[string]drivers.Value{
			"event": drivers.Text("raised"), "rule": drivers.Text("cod-permit"), "severity": drivers.Int(1),
			"point": drivers.Text("cod_mg_l"), "value": drivers.Dec(381, -1), "cod_mg_l": drivers.Int(99)}},
	})
	last := s.Last("plant")
	if len(last) != 1 || last[0].Name != "cod_mg_l" || last[0].Value != "38.1" {
		t.Fatalf("last values of plant = %+v, want only its reading cod_mg_l 38.1", last)
	}
	if got := s.Series("plant", "severity"); len(got) != 0 {
		t.Fatalf("the alarm's severity is charted: %v", got)
	}
}

// A float32 register's value prints as the device gave it (and as
// townlink tail prints it from the wire), not with float64's spurious
// digits; a float64 keeps its own shortest form, other kinds theirs.
func TestTextOfAFloat32IsItsOwnShortestForm(t *testing.T) {
	for _, c := range []struct {
		v    drivers.Value
		want string
	}{
		{drivers.Float(float64(float32(37.211277))), "37.211277"},
		{drivers.Float(0.1), "0.1"},
		{drivers.Float(1.0000000000000002), "1.0000000000000002"},
		{drivers.Dec(12345678, -2), "123456.78"},
		{drivers.Int(7), "7"},
	} {
		if got := Text(c.v); got != c.want {
			t.Errorf("Text(%v) = %q, want %q", c.v, got, c.want)
		}
	}
	s := New(Options{})
	s.Observe([]drivers.Reading{{Device: "plant", Values: map[string]drivers.Value{"cod_mg_l": drivers.Float(float64(float32(30.026749)))}}})
	if last := s.Last("plant"); len(last) != 1 || last[0].Value != "30.026749" {
		t.Errorf("last value = %+v, want 30.026749", last)
	}
}
