package modbus

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serial"
	"github.com/townlink/townlink/hardware/serialsim"
	"github.com/townlink/townlink/internal/testkit"
)

// pymodbusModules are what testdata/pymodbus_server.py imports.
var pymodbusModules = []string{"pymodbus.server", "pymodbus.datastore", "pymodbus.payload", "serial_asyncio", "serial"}

// startPymodbus runs testdata/pymodbus_server.py under Debian's python3
// and returns what it printed after READY (the device path or TCP port).
func startPymodbus(t *testing.T, args ...string) string {
	t.Helper()
	return testkit.StartPython(t, pymodbusModules, "testdata/pymodbus_server.py", args...)
}

// interopConfig mirrors the map in testdata/pymodbus_server.py.
func interopConfig(t *testing.T) Config {
	c := Config{Device: "pymodbus", Unit: 1, Points: []Point{
		{Name: "i16", Address: 0, Type: Int16},
		{Name: "temp_c", Address: 1, Scale: dec(t, "0.1")},
		{Name: "u32_cdab", Address: 2, Type: Uint32, Order: CDAB},
		{Name: "f32_abcd", Address: 4, Type: Float32},
		{Name: "i32_badc", Address: 6, Type: Int32, Order: BADC},
		{Name: "f32_dcba", Address: 8, Type: Float32, Order: DCBA},
		{Name: "i64_dcba", Address: 10, Type: Int64, Order: DCBA},
		{Name: "energy_kwh", Address: 14, Type: Uint32, Scale: dec(t, "0.001")},
		{Name: "f64_cdab", Address: 16, Type: Float64, Order: CDAB},
		{Name: "volt_v", Table: Input, Address: 0, Scale: dec(t, "0.1")},
		{Name: "hz", Table: Input, Address: 1, Type: Float32, Order: CDAB},
	}}
	for i := range 10 {
		c.Points = append(c.Points, Point{Name: "c" + string(rune('0'+i)), Table: Coil, Address: uint16(i)})
	}
	for i := range 5 {
		c.Points = append(c.Points, Point{Name: "d" + string(rune('0'+i)), Table: Discrete, Address: uint16(i)})
	}
	return c
}

func interopWant(t *testing.T) map[string]drivers.Value {
	w := map[string]drivers.Value{
		"i16":        drivers.Int(-5),
		"temp_c":     dec(t, "25.3"),
		"u32_cdab":   drivers.Int(305419896),
		"f32_abcd":   drivers.Float(12.5),
		"i32_badc":   drivers.Int(-100000),
		"f32_dcba":   drivers.Float(-1.5),
		"i64_dcba":   drivers.Int(-1234567890123),
		"energy_kwh": dec(t, "4000000.000"),
		"f64_cdab":   drivers.Float(3.25),
		"volt_v":     dec(t, "230.5"),
		"hz":         drivers.Float(50),
	}
	for i, c := range "1011000110" {
		w["c"+string(rune('0'+i))] = drivers.Bool(c == '1')
	}
	for i, c := range "01101" {
		w["d"+string(rune('0'+i))] = drivers.Bool(c == '1')
	}
	return w
}

// exercise runs the same checks over any transport to the pymodbus server.
func exercise(t *testing.T, tr Transport) {
	ctx := context.Background()
	d := mustNew(t, interopConfig(t), tr)
	if n := len(d.Requests()); n != 4 {
		t.Fatalf("%d requests, want 4 (one per table): %v", n, d.Requests())
	}
	got, err := d.Poll(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := interopWant(t)
	wantValues(t, got[0], want)

	// Out of range: exception 02 from pymodbus, typed.
	bad := mustNew(t, Config{Device: "oob", Unit: 1, Points: []Point{{Name: "x", Address: 100}}}, tr)
	got, err = bad.Poll(ctx, nil)
	var ex *ExceptionError
	if len(got) != 0 || !errors.As(err, &ex) || ex.Code != 2 || ex.Unit != 1 || ex.Function != 3 || !errors.Is(err, ErrIllegalDataAddress) {
		t.Fatalf("out of range: %v %v", got, err)
	}
	if !strings.Contains(err.Error(), "modbus oob unit 1 holding 100..100") {
		t.Errorf("error does not name the registers: %v", err)
	}

	// Writes (FC 5, 6, 15, 16), read back through Poll.
	if err := d.WritePoint(ctx, "temp_c", dec(t, "-30.1")); !errors.Is(err, ErrNotWritable) {
		t.Errorf("negative value into a uint16 point: %v", err)
	}
	for i, e := range []error{
		d.WritePoint(ctx, "temp_c", dec(t, "30.1")),
		d.WritePoint(ctx, "u32_cdab", drivers.Int(4000000001)),
		d.WritePoint(ctx, "f32_abcd", drivers.Float(-7.25)),
		d.WritePoint(ctx, "i64_dcba", drivers.Int(-42)),
		d.WritePoint(ctx, "energy_kwh", dec(t, "1.5")),
		d.WriteCoil(ctx, 1, true),
		d.WriteCoils(ctx, 5, []bool{true, false, false}),
		d.WriteRegisters(ctx, 0, []uint16{0x8000}),
	} {
		if e != nil {
			t.Fatalf("write %d: %v", i, e)
		}
	}
	got, err = d.Poll(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	want["temp_c"] = dec(t, "30.1")
	want["u32_cdab"] = drivers.Int(4000000001)
	want["f32_abcd"] = drivers.Float(-7.25)
	want["i64_dcba"] = drivers.Int(-42)
	want["energy_kwh"] = dec(t, "1.5")
	want["i16"] = drivers.Int(-32768)
	want["c1"], want["c5"], want["c6"], want["c7"] = drivers.Bool(true), drivers.Bool(true), drivers.Bool(false), drivers.Bool(false)
	wantValues(t, got[0], want)
}

func TestInteropPymodbusRTU(t *testing.T) {
	link, err := serialsim.NewLink()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { link.Close() })
	startPymodbus(t, "rtu", link.B.Path())
	port, err := serial.Open(link.A.Path(), hardware.Mode{Baud: 9600})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { port.Close() })
	exercise(t, NewRTU(port, 3*time.Second, 1))
}

func TestInteropPymodbusTCP(t *testing.T) {
	p := startPymodbus(t, "tcp")
	var dialer net.Dialer
	tr := NewTCP(func(ctx context.Context) (net.Conn, error) {
		return dialer.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", p))
	}, 3*time.Second)
	t.Cleanup(func() { tr.Close() })
	exercise(t, tr)
}
