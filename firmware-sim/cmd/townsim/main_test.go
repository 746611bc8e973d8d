package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serial"
	"github.com/townlink/townlink/internal/testkit"
)

// crc is CRC-16/MODBUS, written again here so the test checks replies
// without the simulator's code.
func crc(b []byte) uint16 {
	c := uint16(0xFFFF)
	for _, x := range b {
		c ^= uint16(x)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xA001
			} else {
				c >>= 1
			}
		}
	}
	return c
}

// townsim is an in-process run with pipes for stdin and stdout.
type townsim struct {
	t     *testing.T
	cmd   *os.File // write end of stdin
	lines chan string
	done  chan struct{} // closed when run has returned err
	err   error
	stop  context.CancelFunc
	gpio  []string // "gpio" lines before ready
}

func startTownsim(t *testing.T, args ...string) *townsim {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	ts := &townsim{t: t, cmd: inW, lines: make(chan string, 100), done: make(chan struct{}), stop: cancel}
	go func() {
		ts.err = run(ctx, args, inR, outW, io.Discard)
		close(ts.done)
		outW.Close()
	}()
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			ts.lines <- sc.Text()
		}
		close(ts.lines)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ts.done:
		case <-time.After(10 * time.Second):
			t.Error("townsim did not stop")
		}
		inR.Close()
		inW.Close()
	})
	return ts
}

// next returns the next stdout line.
// untilReady returns the "line" lines printed before "ready"; the "gpio"
// lines go to ts.gpio.
func (ts *townsim) untilReady() []string {
	ts.t.Helper()
	var lines []string
	for {
		l := ts.next()
		if l == "ready" {
			return lines
		}
		switch {
		case strings.HasPrefix(l, "line "):
			lines = append(lines, l)
		case strings.HasPrefix(l, "gpio "):
			ts.gpio = append(ts.gpio, l)
		default:
			ts.t.Fatalf("want a line, gpio or ready, got %q", l)
		}
	}
}

func (ts *townsim) next() string {
	ts.t.Helper()
	select {
	case l, ok := <-ts.lines:
		if !ok {
			<-ts.done
			ts.t.Fatalf("townsim ended: %v", ts.err)
		}
		return l
	case <-time.After(10 * time.Second):
		ts.t.Fatal("no output from townsim")
	}
	return ""
}

// send runs a command and returns its first answer line.
func (ts *townsim) send(c string) string {
	ts.t.Helper()
	if _, err := io.WriteString(ts.cmd, c+"\n"); err != nil {
		ts.t.Fatal(err)
	}
	return ts.next()
}

// ask writes a hand-built request and reads an n-byte reply, checking its
// CRC.
func ask(t *testing.T, p hardware.Port, req string, n int) []byte {
	t.Helper()
	if _, err := p.Write(testkit.Unhex(t, req)); err != nil {
		t.Fatal(err)
	}
	if err := p.SetReadTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(p, buf); err != nil {
		t.Fatalf("request %s: %v", req, err)
	}
	c := crc(buf[:n-2])
	if buf[n-2] != byte(c) || buf[n-1] != byte(c>>8) {
		t.Fatalf("request %s: reply % X has a bad CRC", req, buf)
	}
	return buf
}

var lineRE = regexp.MustCompile(`^line RS485-1 (\S+) -> (/dev/pts/\d+) \(modbus units 1,2,3\)$`)

func TestTownsimServesTheTownship(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A stale link from an earlier run is replaced.
	if err := os.Symlink("/dev/pts/99999", filepath.Join(dir, "RS485-1")); err != nil {
		t.Fatal(err)
	}
	ts := startTownsim(t, "-dir", dir)
	lines := ts.untilReady()
	m := lineRE.FindStringSubmatch(lines[0])
	if m == nil {
		t.Fatal("first line is not the RS485-1 line")
	}
	if len(lines) != 3 || !strings.Contains(lines[1], "DL/T 645-2007 meter 202611300001") || !strings.Contains(lines[1], "CJ/T 188 water meter") || !strings.Contains(lines[2], "DL/T 645-1997") {
		t.Errorf("lines = %q, want RS485-1 (modbus), RS485-2 (meters), RS485-3 (1997 meter)", lines)
	}
	link := filepath.Join(dir, "RS485-1")
	if m[1] != link {
		t.Errorf("printed link %s, want %s", m[1], link)
	}
	target, err := os.Readlink(link)
	if err != nil || target != m[2] {
		t.Fatalf("link %s -> %q (%v), printed %s", link, target, err, m[2])
	}
	if fi, err := os.Stat(link); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("%s does not lead to a character device: %v %v", link, fi, err)
	}

	gw, err := serial.Open(link, hardware.Mode{Baud: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()

	// Unit 1 holding 0-1: COD float32 ABCD, 20..40 mg/L.
	r := ask(t, gw, "01 03 00 00 00 02 C4 0B", 9)
	if !bytes.Equal(r[:3], []byte{1, 3, 4}) {
		t.Fatalf("unit 1 reply % X", r)
	}
	if cod := math.Float32frombits(binary.BigEndian.Uint32(r[3:7])); cod < 20 || cod > 40 {
		t.Errorf("COD %v mg/L, want 20..40", cod)
	}
	// Unit 1 input 10: temperature int16 ×0.1, 18..30 °C.
	r = ask(t, gw, "01 04 00 0A 00 01 11 C8", 7)
	if temp := int16(binary.BigEndian.Uint16(r[3:5])); r[1] != 4 || temp < 180 || temp > 300 {
		t.Errorf("temperature reply % X (raw %d), want 180..300", r, temp)
	}
	// Unit 1 coil 0: pump, one bit.
	if r = ask(t, gw, "01 01 00 00 00 01 FD CA", 6); r[1] != 1 || r[2] != 1 || r[3] > 1 {
		t.Errorf("pump coil reply % X", r)
	}
	// Unit 2 holding 0-3: pressure uint16, reserved 0, hours uint32 CDAB.
	r = ask(t, gw, "02 03 00 00 00 04 44 3A", 13)
	pressure := binary.BigEndian.Uint16(r[3:])
	hours := uint32(binary.BigEndian.Uint16(r[9:]))<<16 | uint32(binary.BigEndian.Uint16(r[7:]))
	if r[0] != 2 || pressure < 350 || pressure > 450 || hours < 12000 || hours > 13000 || r[5] != 0 || r[6] != 0 {
		t.Errorf("unit 2 reply % X: pressure %d kPa, hours %d", r, pressure, hours)
	}
	// Unit 3 discrete 0 and input 0.
	if r = ask(t, gw, "03 02 00 00 00 01 B8 28", 6); r[0] != 3 || r[1] != 2 || r[3] > 1 {
		t.Errorf("door reply % X", r)
	}
	if r = ask(t, gw, "03 04 00 00 00 01 30 28", 7); binary.BigEndian.Uint16(r[3:]) < 400 || binary.BigEndian.Uint16(r[3:]) > 700 {
		t.Errorf("humidity reply % X, want 400..700", r)
	}

	// Commands: a fault, a pinned value, a bad command.
	if a := ts.send("fault 2 exception:4"); !strings.HasPrefix(a, "ok unit 2 (boiler room) fault exception:4") {
		t.Errorf("fault answer %q", a)
	}
	if r = ask(t, gw, "02 03 00 00 00 01 84 39", 5); !bytes.Equal(r[:3], []byte{2, 0x83, 4}) {
		t.Errorf("unit 2 with exception:4 answered % X", r)
	}
	if a := ts.send("fault 2 none"); !strings.HasPrefix(a, "ok") {
		t.Errorf("fault none answer %q", a)
	}
	if a := ts.send("set 1 holding 0 0x4148 0"); !strings.HasPrefix(a, "ok unit 1 holding 0") {
		t.Errorf("set answer %q", a)
	}
	r = ask(t, gw, "01 03 00 00 00 02 C4 0B", 9)
	if !bytes.Equal(r[3:7], []byte{0x41, 0x48, 0, 0}) {
		t.Errorf("after set, COD registers % X, want 41 48 00 00 (12.5)", r[3:7])
	}
	if a := ts.send("bogus 1"); !strings.HasPrefix(a, "error: townsim: bad command") {
		t.Errorf("bogus command answer %q", a)
	}
	if a := ts.send("stats"); !strings.HasPrefix(a, "ok line RS485-1 frames 8") {
		t.Errorf("stats answer %q", a)
	}

	ts.stop()
	<-ts.done
	if ts.err != nil {
		t.Fatalf("run: %v", ts.err)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Errorf("link %s left behind: %v", link, err)
	}
}

func TestTownsimFaultsFlagAndWireTime(t *testing.T) {
	dir := t.TempDir()
	ts := startTownsim(t, "-dir", dir, "-faults", "2=silent,RS485-1:3=exception:6", "-wire-time")
	ts.untilReady()
	gw, err := serial.Open(filepath.Join(dir, "RS485-1"), hardware.Mode{Baud: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	if r := ask(t, gw, "03 04 00 00 00 01 30 28", 5); !bytes.Equal(r[:3], []byte{3, 0x84, 6}) {
		t.Errorf("unit 3 with exception:6 answered % X", r)
	}
	if _, err := gw.Write(testkit.Unhex(t, "02 03 00 00 00 01 84 39")); err != nil {
		t.Fatal(err)
	}
	if err := gw.SetReadTimeout(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if n, err := gw.Read(make([]byte, 16)); err == nil {
		t.Errorf("silent unit 2 answered %d bytes", n)
	}
	// Wire time at 9600 8N1: 8 + 9 bytes = 17.7 ms, plus t3.5 = 4 ms.
	start := time.Now()
	ask(t, gw, "01 03 00 00 00 02 C4 0B", 9)
	if took := time.Since(start); took < 21*time.Millisecond {
		t.Errorf("reply after %v with -wire-time, want at least 21 ms", took)
	}
}

func TestTownsimRefuses(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "RS485-1"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"a file where the link goes": {"-dir", dir},
		"no dir":                     {},
		"unknown scenario":           {"-dir", dir, "-scenario", "city"},
		"bad fault":                  {"-dir", t.TempDir(), "-faults", "2=loud"},
		"unknown unit":               {"-dir", t.TempDir(), "-faults", "9=silent"},
	} {
		if err := run(t.Context(), args, strings.NewReader(""), io.Discard, io.Discard); err == nil {
			t.Errorf("%s: run succeeded", name)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "RS485-1")); data == nil {
		if fi, err := os.Lstat(filepath.Join(dir, "RS485-1")); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("the file in the link's place was touched: %v %v", fi, err)
		}
	}
}

// The package doc carries the register map exactly as -list prints it, so
// a gateway config can be written from either.
func TestDocListsEveryPoint(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	var docLines []string
	for _, l := range strings.Split(string(doc), "\n") {
		docLines = append(docLines, norm(strings.TrimPrefix(l, "//")))
	}
	var b strings.Builder
	if err := township().listPoints(&b); err != nil {
		t.Fatal(err)
	}
	for _, row := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		found := false
		for _, d := range docLines {
			found = found || d == norm(row)
		}
		if !found {
			t.Errorf("doc.go lacks the register map row:\n%s", row)
		}
	}
}
