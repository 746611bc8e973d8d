package main

import (
	"strings"
	"testing"
	"time"
)

// The meter-fault commands reach the meters; wrong ones say why.
func TestGridCommands(t *testing.T) {
	var lines []*simLine
	for _, l := range township().Lines {
		sl, err := l.build(time.Now(), false)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, sl)
	}
	meter := func(addr string) string {
		for _, l := range lines {
			if m := l.meters[addr]; m != nil {
				v, _ := m.Get("voltage_a_v")
				return v
			}
		}
		return "?"
	}
	for _, c := range []struct{ cmd, wantOut, wantErr string }{
		{"phase 202611300001 a lose", "phase a lose", ""},
		{"outage RS485-2 on", "3 meters", ""},
		{"outage RS485-2 off", "3 meters", ""},
		{"leak 20261130000101 3600", "leaks 3600 L/h", ""},
		{"silent 202611300002 on", "silent on", ""},
		{"silent 202611300002 off", "silent off", ""},
		{"phase 20261130000101 a lose", "", "water meter"},
		{"phase 202611300001 a maybe", "", "want on or off"},
		{"leak 202611300001 5", "", "electricity meter"},
		{"leak 20261130000101 -5", "", "0..100000"},
		{"outage RS485-1 on", "", "no DL/T 645 meter"},
		{"silent 999 on", "", "no meter"},
	} {
		out, err := command(lines, c.cmd)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: error %v, want %q", c.cmd, err, c.wantErr)
			}
			continue
		}
		if err != nil || !strings.Contains(out, c.wantOut) {
			t.Errorf("%q = %q, %v", c.cmd, out, err)
		}
		if c.cmd == "phase 202611300001 a lose" && meter("202611300001") != "0.0" {
			t.Errorf("phase a after lose: %s", meter("202611300001"))
		}
		if c.cmd == "outage RS485-2 off" && meter("202611300001") != "220.0" {
			t.Errorf("phase a after the outage: %s", meter("202611300001"))
		}
	}
	if help, _ := command(lines, "help"); !strings.Contains(help, "leak ADDR LPERH") {
		t.Errorf("help lacks the meter faults:\n%s", help)
	}
}
