package scan_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/townlink/townlink/gateway/scan"
	"github.com/townlink/townlink/hardware"
)

func TestParseSetting(t *testing.T) {
	cases := []struct {
		in           string
		mode         hardware.Mode
		framed, auto bool
		bad          bool
	}{
		{in: "auto", auto: true},
		{in: "AUTO", auto: true},
		{in: "9600", mode: hardware.Mode{Baud: 9600}},
		{in: "9600-8N1", mode: hardware.Mode{Baud: 9600, DataBits: 8, StopBits: 1}, framed: true},
		{in: "2400 8E1", mode: hardware.Mode{Baud: 2400, DataBits: 8, Parity: hardware.ParityEven, StopBits: 1}, framed: true},
		{in: "19200,7O2", mode: hardware.Mode{Baud: 19200, DataBits: 7, Parity: hardware.ParityOdd, StopBits: 2}, framed: true},
		{in: "", bad: true},
		{in: "fast", bad: true},
		{in: "9600-8X1", bad: true},
		{in: "9600-9N1", bad: true},
		{in: "0", bad: true},
		{in: "9600-8N", bad: true},
	}
	for _, c := range cases {
		mode, framed, auto, err := scan.ParseSetting(c.in)
		if c.bad {
			if !errors.Is(err, scan.ErrSetting) {
				t.Errorf("%q: err %v, want ErrSetting", c.in, err)
			}
			continue
		}
		if err != nil || mode != c.mode || framed != c.framed || auto != c.auto {
			t.Errorf("%q = %+v framed=%v auto=%v %v; want %+v %v %v", c.in, mode, framed, auto, err, c.mode, c.framed, c.auto)
		}
	}
}

func TestParseProtocolsAndUnits(t *testing.T) {
	ps, err := scan.ParseProtocols("modbus, DLT645")
	if err != nil || !slices.Equal(ps, []scan.Protocol{scan.Modbus, scan.DLT645}) {
		t.Errorf("ParseProtocols = %v, %v", ps, err)
	}
	for _, bad := range []string{"", "dlt645,dlt645", "mbus", "dlt645,"} {
		if _, err := scan.ParseProtocols(bad); !errors.Is(err, scan.ErrProtocol) {
			t.Errorf("ParseProtocols(%q): %v, want ErrProtocol", bad, err)
		}
	}
	us, err := scan.ParseUnits("1,5, 10-12")
	if err != nil || !slices.Equal(us, []byte{1, 5, 10, 11, 12}) {
		t.Errorf("ParseUnits = %v, %v", us, err)
	}
	if us, _ := scan.ParseUnits("1-247"); len(us) != 247 || us[246] != 247 {
		t.Errorf("1-247 gives %d units", len(us))
	}
	for _, bad := range []string{"", "0", "248", "5-3", "1,1", "1-3,2", "a", "1-"} {
		if _, err := scan.ParseUnits(bad); !errors.Is(err, scan.ErrUnits) {
			t.Errorf("ParseUnits(%q): %v, want ErrUnits", bad, err)
		}
	}
}

// AutoPlan tries each edition's settings in its own order, most common
// first, in rounds across the editions.
func TestAutoPlan(t *testing.T) {
	var got []string
	for _, a := range scan.AutoPlan(nil) {
		got = append(got, string(a.Edition)+" @ "+a.Mode.String())
	}
	want := []string{
		"DL/T 645-2007 @ 2400 8E1", "DL/T 645-1997 @ 2400 8E1", "CJ/T 188-2004 @ 2400 8E1", "Modbus RTU @ 9600 8N1",
		"DL/T 645-2007 @ 1200 8E1", "DL/T 645-1997 @ 1200 8E1", "Modbus RTU @ 9600 8E1",
		"DL/T 645-2007 @ 4800 8E1", "DL/T 645-1997 @ 4800 8E1", "Modbus RTU @ 19200 8N1",
		"DL/T 645-2007 @ 9600 8E1", "DL/T 645-1997 @ 9600 8E1", "Modbus RTU @ 19200 8E1",
		"Modbus RTU @ 4800 8N1", "Modbus RTU @ 4800 8E1", "Modbus RTU @ 38400 8N1", "Modbus RTU @ 38400 8E1",
		"Modbus RTU @ 115200 8N1", "Modbus RTU @ 115200 8E1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("AutoPlan:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	fixed := scan.FixedPlan(hardware.Mode{Baud: 9600}, false, []scan.Protocol{scan.Modbus, scan.DLT645})
	var f []string
	for _, a := range fixed {
		f = append(f, string(a.Edition)+" @ "+a.Mode.String())
	}
	if want := []string{"Modbus RTU @ 9600 8N1", "Modbus RTU @ 9600 8E1", "DL/T 645-2007 @ 9600 8E1", "DL/T 645-1997 @ 9600 8E1"}; !slices.Equal(f, want) {
		t.Errorf("FixedPlan = %v, want %v", f, want)
	}
}

func TestUnitOf(t *testing.T) {
	for point, unit := range map[string]string{"energy_kwh": "kWh", "voltage_a_v": "V", "current_a_a": "A", "flow_m3": "m³",
		"temp_c": "°C", "cod_mg_l": "mg/L", "pf": "", "valve": "", "clock_offset_s": "s", "freq_hz": "Hz", "a": "", "_v": ""} {
		if got := scan.UnitOf(point); got != unit {
			t.Errorf("UnitOf(%q) = %q, want %q", point, got, unit)
		}
	}
}

func FuzzParseSetting(f *testing.F) {
	for _, s := range []string{"auto", "9600", "9600-8N1", "2400 8E1", "x", "-", "9600-8N1-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mode, framed, auto, err := scan.ParseSetting(s)
		if err != nil {
			if !errors.Is(err, scan.ErrSetting) {
				t.Fatalf("%q: error %v is not ErrSetting", s, err)
			}
			return
		}
		if !auto && mode.Validate() != nil {
			t.Fatalf("%q: invalid mode %+v accepted", s, mode)
		}
		if auto && framed {
			t.Fatalf("%q: auto and framed", s)
		}
	})
}

func FuzzParseUnits(f *testing.F) {
	for _, s := range []string{"1-247", "1,5,10-20", "0", "3-1", ",", "1-2-3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		us, err := scan.ParseUnits(s)
		if err != nil {
			if !errors.Is(err, scan.ErrUnits) {
				t.Fatalf("%q: error %v is not ErrUnits", s, err)
			}
			return
		}
		seen := map[byte]bool{}
		for _, u := range us {
			if u < 1 || u > 247 || seen[u] {
				t.Fatalf("%q: units %v", s, us)
			}
			seen[u] = true
		}
	})
}

func FuzzParseProtocols(f *testing.F) {
	for _, s := range []string{"dlt645,cjt188,modbus", "x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := scan.ParseProtocols(s)
		if err != nil {
			if !errors.Is(err, scan.ErrProtocol) {
				t.Fatalf("%q: error %v is not ErrProtocol", s, err)
			}
			return
		}
		if len(ps) == 0 || len(ps) > 3 {
			t.Fatalf("%q: %v", s, ps)
		}
	})
}
