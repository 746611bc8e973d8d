package scan_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/scan"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serialsim"
)

const head = `gateway:
  id: gw-1
  county: "320583"
  township: "320583104"
uplink:
  brokers: ["tcp://127.0.0.1:1883"]
`

func dev(id string, drv config.Driver, line string) config.Device {
	return config.Device{ID: id, Driver: drv, Line: line}
}

// The entries Config writes parse back to the devices found: the line at
// the setting most devices answered at, the others (another setting, a
// heat meter, a Modbus unit without a readable register) as comments.
func TestConfigEntriesParse(t *testing.T) {
	e := hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}
	n := hardware.Mode{Baud: 9600}
	m1 := dev("meter-202612070001", config.DriverDLT645, "RS485-2")
	m1.Address = "202612070001"
	m97 := dev("meter-199700000042", config.DriverDLT645v97, "RS485-2")
	m97.Address = "199700000042"
	w := dev("water-20261207000101", config.DriverCJT188, "RS485-2")
	w.Address, w.MeterType = "20261207000101", 0x11
	heat := dev("water-20261207000102", config.DriverCJT188, "RS485-2")
	heat.Address, heat.MeterType = "20261207000102", 0x20
	u := dev("rs485-2-unit-3", config.DriverModbus, "RS485-2")
	u.Unit, u.Points = 3, []config.Point{{Name: "input_0", Table: config.TableInput, Type: config.TypeUint16}}
	bare := dev("rs485-2-unit-4", config.DriverModbus, "RS485-2")
	bare.Unit = 4
	found := []scan.Found{
		{Edition: scan.DLT645v2007, Mode: e, Device: m1},
		{Edition: scan.DLT645v1997, Mode: e, Device: m97},
		{Edition: scan.CJT188v2004, Mode: e, Device: w},
		{Edition: scan.CJT188v2004, Mode: e, Device: heat, Note: "meter type 20 is a heat meter"},
		{Edition: scan.ModbusRTU, Mode: n, Device: u},
		{Edition: scan.ModbusRTU, Mode: e, Device: bare, Note: "no readable register"},
	}
	snip := scan.Config(found, scan.LineEntry{Name: "RS485-2", Port: "RS485-2"})
	cfg, err := config.Parse("scan.yaml", []byte(head+snip.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, snip)
	}
	if len(cfg.Lines) != 1 || cfg.Lines[0].Mode() != (hardware.Mode{Baud: 2400, DataBits: 8, Parity: hardware.ParityEven, StopBits: 1}) {
		t.Errorf("lines %+v", cfg.Lines)
	}
	var ids []string
	for _, d := range cfg.Devices {
		ids = append(ids, d.ID)
		if d.ID == w.ID && d.MeterType != 0x11 {
			t.Errorf("meter type %#x, want 0x11", d.MeterType)
		}
	}
	if want := []string{m1.ID, m97.ID, w.ID}; !slices.Equal(ids, want) {
		t.Errorf("devices %v, want %v\n%s", ids, want, snip)
	}
	for _, s := range []string{"# Modbus RTU unit 3 answered at 9600 8N1", "# meter type 20 is a heat meter", "# no readable register", "# - id: rs485-2-unit-3"} {
		if !strings.Contains(snip.Devices, s) {
			t.Errorf("entries lack %q:\n%s", s, snip)
		}
	}
	// For a line the config has, only the devices are written.
	if known := scan.Config(found, scan.LineEntry{Name: "RS485-2", Port: "RS485-2", Known: true, Mode: e}); known.Lines != "" || known.Devices != snip.Devices {
		t.Errorf("known line: %q\n%s", known.Lines, known.Devices)
	}
	// A known line keeps its setting, even if most devices answered at another.
	if known := scan.Config(found, scan.LineEntry{Name: "RS485-2", Known: true, Mode: n}); !strings.Contains(known.Devices, "# DL/T 645-2007 202612070001 answered at 2400 8E1, not at the line's 9600 8N1") ||
		!strings.Contains(known.Devices, "  - id: rs485-2-unit-3") {
		t.Errorf("known 9600 line:\n%s", known.Devices)
	}
	// Names that YAML would read as numbers are quoted.
	m1.Line = "3"
	s := scan.Config([]scan.Found{{Edition: scan.DLT645v2007, Mode: e, Device: m1}}, scan.LineEntry{Name: "3", Port: "/dev/pts/3"})
	if _, err := config.Parse("n.yaml", []byte(head+s.String())); err != nil || !strings.Contains(s.Lines, `name: "3"`) {
		t.Errorf("numeric line name: %v\n%s", err, s)
	}
}

// The tap writes each request and the reply bytes read after it, one
// line each, whatever chunks the port delivered them in.
func TestTapWritesFramesInHex(t *testing.T) {
	p := serialsim.NewScript(t, serialsim.Step{Expect: []byte{0x01, 0x03}, Reply: []byte{0x01, 0x83, 0x02}})
	var log bytes.Buffer
	tap := scan.NewTap(p, &log)
	if err := tap.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := tap.Write([]byte{0x01, 0x03}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	got := 0
	for got < 3 {
		n, err := tap.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	tap.End()
	if want := "> 01 03\n< 01 83 02\n"; log.String() != want {
		t.Errorf("tap wrote %q, want %q", log.String(), want)
	}
}
