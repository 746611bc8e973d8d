package modbussim

import (
	"context"
	"github.com/townlink/townlink/internal/testkit"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Interop against Debian's mbpoll (libmodbus), a master nobody here wrote.
// mbpoll runs with -0 (PDU addressing: -r 0 is register 0) and -1 (poll
// once). Without -B it reads 32-bit values low word first (CDAB); with -B
// high word first (ABCD).

// mbpoll runs mbpoll against path with options opts and, after the path,
// the values to write (none: read), and returns its output and exit error.
func mbpoll(t *testing.T, path string, opts []string, writes ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("mbpoll")
	if err != nil {
		t.Fatal("mbpoll not found: apt-get install mbpoll")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"-m", "rtu", "-b", "9600", "-P", "none", "-1", "-0"}, opts...)
	args = append(args, path)
	if len(writes) > 0 {
		args = append(args, "--")
		args = append(args, writes...)
	}
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

var mbpollValue = regexp.MustCompile(`(?m)^\[(\d+)\]:\s+(.+?)\s*$`)

// mbpollRead reads and returns "[ref]: value" lines as ref → value text.
func mbpollRead(t *testing.T, path string, opts ...string) map[string]string {
	t.Helper()
	out, err := mbpoll(t, path, opts)
	if err != nil {
		t.Fatalf("mbpoll %v: %v\n%s", opts, err, out)
	}
	got := map[string]string{}
	for _, m := range mbpollValue.FindAllStringSubmatch(out, -1) {
		got[m[1]] = m[2]
	}
	return got
}

func wantValues(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for ref, w := range want {
		if got[ref] != w {
			t.Errorf("%s: mbpoll read [%s] = %q, want %q (all: %v)", what, ref, got[ref], w, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: mbpoll printed %d values, want %d: %v", what, len(got), len(want), got)
	}
}

func TestMbpollReadsEveryTable(t *testing.T) {
	u := NewUnit(1)
	u.SetHolding(0, 1, 0xFFFE, 0x7FFF, 0x8000) // 1, -2, 32767, -32768
	u.SetInput(10, uint16(0xFF85), 253)        // -123, 253 (e.g. 25.3 °C ×10)
	for i, v := range []bool{true, false, true, true, false, false, false, false, true} {
		u.SetCoil(uint16(i), v)
	}
	u.SetDiscrete(7, false)
	u.SetDiscrete(8, true)
	must(t, u.SetFloat32(HoldingRegisters, 100, 12.5, ABCD))
	must(t, u.SetFloat32(HoldingRegisters, 102, -3.25, CDAB))
	must(t, u.SetInt32(InputRegisters, 200, -100000, ABCD))
	must(t, u.SetInt32(InputRegisters, 202, 2000000000, CDAB))
	must(t, u.SetFloat32(InputRegisters, 204, 27.625, ABCD))
	path := testkit.ServePTY(t, NewBus(mode9600, u).Serve)

	wantValues(t, "holding int16", mbpollRead(t, path, "-a", "1", "-t", "4", "-r", "0", "-c", "4"),
		map[string]string{"0": "1", "1": "65534 (-2)", "2": "32767", "3": "32768 (-32768)"})
	wantValues(t, "input int16", mbpollRead(t, path, "-a", "1", "-t", "3", "-r", "10", "-c", "2"),
		map[string]string{"10": "65413 (-123)", "11": "253"})
	wantValues(t, "coils", mbpollRead(t, path, "-a", "1", "-t", "0", "-r", "0", "-c", "9"),
		map[string]string{"0": "1", "1": "0", "2": "1", "3": "1", "4": "0", "5": "0", "6": "0", "7": "0", "8": "1"})
	wantValues(t, "discrete", mbpollRead(t, path, "-a", "1", "-t", "1", "-r", "7", "-c", "2"),
		map[string]string{"7": "0", "8": "1"})
	wantValues(t, "float32 ABCD", mbpollRead(t, path, "-a", "1", "-t", "4:float", "-B", "-r", "100", "-c", "1"),
		map[string]string{"100": "12.5"})
	wantValues(t, "float32 CDAB", mbpollRead(t, path, "-a", "1", "-t", "4:float", "-r", "102", "-c", "1"),
		map[string]string{"102": "-3.25"})
	wantValues(t, "int32 ABCD", mbpollRead(t, path, "-a", "1", "-t", "3:int", "-B", "-r", "200", "-c", "1"),
		map[string]string{"200": "-100000"})
	wantValues(t, "int32 CDAB", mbpollRead(t, path, "-a", "1", "-t", "3:int", "-r", "202", "-c", "1"),
		map[string]string{"202": "2000000000"})
	wantValues(t, "input float32 ABCD", mbpollRead(t, path, "-a", "1", "-t", "3:float", "-B", "-r", "204", "-c", "1"),
		map[string]string{"204": "27.625"})
}

func TestMbpollWrites(t *testing.T) {
	u := NewUnit(1)
	u.SetHolding(0, make([]uint16, 10)...)
	for i := range 4 {
		u.SetCoil(uint16(i), false)
	}
	path := testkit.ServePTY(t, NewBus(mode9600, u).Serve)

	write := func(opts []string, vals ...string) {
		t.Helper()
		if out, err := mbpoll(t, path, opts, vals...); err != nil {
			t.Fatalf("mbpoll write %v %v: %v\n%s", opts, vals, err, out)
		}
	}
	write([]string{"-a", "1", "-t", "4", "-r", "5"}, "1234")
	if v, _ := u.Holding(5); v != 1234 {
		t.Errorf("after mbpoll wrote 1234 to holding 5, the unit has %d", v)
	}
	write([]string{"-a", "1", "-t", "4", "-r", "6"}, "65531", "7", "65535")
	for i, want := range []uint16{0xFFFB, 7, 0xFFFF} {
		if v, _ := u.Holding(uint16(6 + i)); v != want {
			t.Errorf("holding %d = %#04x after a multiple write, want %#04x", 6+i, v, want)
		}
	}
	write([]string{"-a", "1", "-t", "0", "-r", "3"}, "1")
	if v, _ := u.Coil(3); !v {
		t.Error("coil 3 is off after mbpoll switched it on")
	}
	write([]string{"-a", "1", "-t", "0", "-r", "0"}, "1", "0", "1")
	for i, want := range []bool{true, false, true, true} {
		if v, _ := u.Coil(uint16(i)); v != want {
			t.Errorf("coil %d = %v after a multiple-coil write, want %v", i, v, want)
		}
	}
	write([]string{"-a", "1", "-t", "4:float", "-B", "-r", "0"}, "-7.5")
	if a, _ := u.Holding(0); a != 0xC0F0 {
		t.Errorf("float -7.5 written ABCD: holding 0 = %#04x, want 0xC0F0", a)
	}
	write([]string{"-a", "1", "-t", "4:int", "-r", "2"}, "-100000") // CDAB: FFFE7960 sent as 7960 FFFE
	if lo, _ := u.Holding(2); lo != 0x7960 {
		t.Errorf("int32 -100000 written CDAB: holding 2 = %#04x, want 0x7960", lo)
	}
	if hi, _ := u.Holding(3); hi != 0xFFFE {
		t.Errorf("int32 -100000 written CDAB: holding 3 = %#04x, want 0xFFFE", hi)
	}
	// Writing an address the unit does not have is refused.
	out, err := mbpoll(t, path, []string{"-a", "1", "-t", "4", "-r", "500"}, "1")
	if err == nil || !strings.Contains(out, "Illegal data address") {
		t.Errorf("write to a missing register: err %v, output:\n%s", err, out)
	}
}

func TestMbpollSeesFaults(t *testing.T) {
	u := NewUnit(1)
	u.SetHolding(0, 42)
	b := NewBus(mode9600, u)
	path := testkit.ServePTY(t, b.Serve)
	read := []string{"-a", "1", "-t", "4", "-r", "0", "-c", "1", "-o", "0.3"}

	cases := []struct {
		fault Fault
		want  string
	}{
		{Silent(), "Connection timed out"},
		{BadCRC(), "Invalid CRC"},
		{Exception(ExServerFailure), "Slave device or server failure"},
		{Exception(6), "Slave device or server is busy"},
		{Exception(ExIllegalDataAddress), "Illegal data address"},
	}
	for _, c := range cases {
		u.SetFault(c.fault)
		out, err := mbpoll(t, path, read)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("fault %v: mbpoll err %v, want output with %q:\n%s", c.fault, err, c.want, out)
		}
	}
	// Missing address without any fault: exception 02 from the register map.
	u.SetFault(Fault{})
	out, err := mbpoll(t, path, []string{"-a", "1", "-t", "4", "-r", "100", "-c", "1"})
	if err == nil || !strings.Contains(out, "Illegal data address") {
		t.Errorf("read of a missing register: err %v:\n%s", err, out)
	}
	wantValues(t, "after the faults are cleared", mbpollRead(t, path, read...), map[string]string{"0": "42"})
	s := b.Stats().Units[1]
	if s.Suppressed == 0 || s.Exceptions < 4 {
		t.Errorf("stats %+v: want the silent request suppressed and 4 exception replies", s)
	}
}

func TestMbpollMultiDrop(t *testing.T) {
	u1, u2 := NewUnit(1), NewUnit(2)
	u1.SetHolding(0, 111)
	u2.SetHolding(0, 222)
	b := NewBus(mode9600, u1, u2)
	path := testkit.ServePTY(t, b.Serve)
	wantValues(t, "unit 1", mbpollRead(t, path, "-a", "1", "-t", "4", "-r", "0", "-c", "1"), map[string]string{"0": "111"})
	wantValues(t, "unit 2", mbpollRead(t, path, "-a", "2", "-t", "4", "-r", "0", "-c", "1"), map[string]string{"0": "222"})
	out, err := mbpoll(t, path, []string{"-a", "3", "-t", "4", "-r", "0", "-c", "1", "-o", "0.3"})
	if err == nil || !strings.Contains(out, "timed out") {
		t.Errorf("unit 3 is not on the bus but something answered: err %v\n%s", err, out)
	}
	s := b.Stats()
	if s.Ignored != 1 || s.Units[1].Replies != 1 || s.Units[2].Replies != 1 {
		t.Errorf("stats %+v: want one reply per unit and one ignored frame", s)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
