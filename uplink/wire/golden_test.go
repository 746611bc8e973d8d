package wire

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.cbor and *.diag from the Go values in golden_test.go")

const goldenGW = "tl-320583104-01"

func goldenTelemetry() *Batch {
	return &Batch{V: Version, GW: goldenGW, Stream: StreamTelemetry, Recs: []Record{
		{
			Seq: 1041, Dev: "meter-07", Kind: KindPower, TS: 1767225600123, TSrc: TSrcDevice,
			Grid: "320583104-g12",
			Vals: map[string]Value{
				"energy_kwh":  Dec(12345678, -2), // 123456.78 kWh, exactly
				"voltage_a_v": Dec(2297, -1),     // 229.7 V
				"cover_open":  Bool(false),
				"tariff":      Int(2),
				"temp_c":      Float(36.5),
				"model":       Text("DDS1531 电能表"),
			},
		},
		{
			Seq: 1042, Dev: "meter-08", Kind: KindPower, TS: 1767225600456, TSrc: TSrcGateway,
			Vals: map[string]Value{"energy_kwh": Dec(-5, -3), "freq_hz": Float(49.98)},
			Q:    4,
		},
	}}
}

func goldenEvidence() *Batch {
	b := &Batch{V: Version, GW: goldenGW, Stream: StreamEvidence}
	var prev []byte
	for i, id := range []string{"VID-0001", "VID-0002", "VID-0003"} {
		r := Record{
			Dev: "recorder-3", Kind: KindRecorder, TS: 1767225600000 + int64(i)*60000, TSrc: TSrcDevice,
			Vals: map[string]Value{
				"file_id":    Text(id),
				"sha256":     Text(strings.Repeat("ab", 32)),
				"size_bytes": Int(104857600 + int64(i)),
				"duration_s": Int(300),
				"officer":    Text("P-1024"),
				"started":    Int(1767225300000 + int64(i)*60000),
				"ended":      Int(1767225600000 + int64(i)*60000),
			},
		}
		enc, err := EncodeRecord(&r)
		if err != nil {
			panic(err)
		}
		sealed, h, err := Seal(StreamEvidence, enc, uint64(i+1), prev)
		if err != nil {
			panic(err)
		}
		dec, err := DecodeRecord(sealed)
		if err != nil {
			panic(err)
		}
		b.Recs = append(b.Recs, *dec)
		prev = h
	}
	return b
}

func goldenGap() *Batch {
	g := GapRecord(goldenGW, 2001, 2500, "quota", 1767225600789)
	g.Seq = 2501
	return &Batch{V: Version, GW: goldenGW, Stream: StreamTelemetry, Recs: []Record{g}}
}

func goldenStatus() *Status {
	return &Status{
		V: Version, GW: goldenGW, State: StateOnline, TS: 1767225600000,
		Version: "townlink 0.1.0", Boot: "3f2a9c1e-boot",
		Backlog:        map[string]uint64{StreamTelemetry: 1200, StreamEvents: 3, StreamAlarms: 0, StreamEvidence: 0},
		OldestUnsentMS: 42000,
		Dropped:        map[string]uint64{"quota": 500},
		Devices:        map[string]string{"meter-07": DeviceOK, "meter-08": DeviceDegraded, "recorder-3": DeviceDown},
		Clock:          ClockSynced,
	}
}

func goldenCommand() *Command {
	return &Command{ID: "c-20260101-0001", Op: OpSet, Dev: "relay-1", Args: map[string]Value{"output": Text("DO1"), "on": Bool(true), "hold_s": Dec(15, -1)}}
}

func goldenResult() *CommandResult {
	return &CommandResult{ID: "c-20260101-0001", OK: true, Vals: map[string]Value{"energy_kwh": Dec(12345678, -2)}}
}

func goldenAck() *PlatformAck { return &PlatformAck{Stream: StreamTelemetry, Upto: 1042} }

type goldenCase struct {
	name   string
	encode func() ([]byte, error)
	check  func(t *testing.T, p []byte) // decode p and compare with the Go value
}

func goldenCases() []goldenCase {
	batch := func(mk func() *Batch) goldenCase {
		return goldenCase{
			encode: func() ([]byte, error) { return Encode(mk()) },
			check: func(t *testing.T, p []byte) {
				got, err := Decode(p)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if want := mk(); !got.Equal(want) {
					t.Fatalf("Decode:\n got %+v\nwant %+v", got, want)
				}
			},
		}
	}
	cases := []goldenCase{
		batch(goldenTelemetry), batch(goldenEvidence), batch(goldenGap),
		{
			encode: func() ([]byte, error) { return EncodeStatus(goldenStatus()) },
			check: func(t *testing.T, p []byte) {
				got, err := DecodeStatus(p)
				if err != nil {
					t.Fatal(err)
				}
				if want := goldenStatus(); !statusEqual(got, want) {
					t.Fatalf("DecodeStatus:\n got %+v\nwant %+v", got, want)
				}
			},
		},
		{
			encode: func() ([]byte, error) { return EncodeCommand(goldenCommand()) },
			check: func(t *testing.T, p []byte) {
				got, err := DecodeCommand(p)
				if err != nil {
					t.Fatal(err)
				}
				if want := goldenCommand(); !commandEqual(got, want) {
					t.Fatalf("DecodeCommand:\n got %+v\nwant %+v", got, want)
				}
			},
		},
		{
			encode: func() ([]byte, error) { return EncodeCommandResult(goldenResult()) },
			check: func(t *testing.T, p []byte) {
				got, err := DecodeCommandResult(p)
				if err != nil {
					t.Fatal(err)
				}
				if want := goldenResult(); !resultEqual(got, want) {
					t.Fatalf("DecodeCommandResult:\n got %+v\nwant %+v", got, want)
				}
			},
		},
		{
			encode: func() ([]byte, error) { return EncodeAck(goldenAck()) },
			check: func(t *testing.T, p []byte) {
				got, err := DecodeAck(p)
				if err != nil {
					t.Fatal(err)
				}
				if *got != *goldenAck() {
					t.Fatalf("DecodeAck: got %+v", got)
				}
			},
		},
	}
	for i, n := range []string{"batch-telemetry", "batch-evidence", "gap", "status", "command", "cmd-result", "ack"} {
		cases[i].name = n
	}
	return cases
}

func statusEqual(a, b *Status) bool {
	ea, err1 := EncodeStatus(a)
	eb, err2 := EncodeStatus(b)
	return err1 == nil && err2 == nil && bytes.Equal(ea, eb) &&
		a.GW == b.GW && len(a.Devices) == len(b.Devices) && a.Backlog[StreamTelemetry] == b.Backlog[StreamTelemetry]
}

func valsEqual(a, b map[string]Value) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !v.Equal(w) {
			return false
		}
	}
	return true
}

func commandEqual(a, b *Command) bool {
	return a.ID == b.ID && a.Op == b.Op && a.Dev == b.Dev && a.Expires == b.Expires && valsEqual(a.Args, b.Args)
}

func resultEqual(a, b *CommandResult) bool {
	return a.ID == b.ID && a.OK == b.OK && a.Err == b.Err && a.Status == b.Status && valsEqual(a.Vals, b.Vals)
}

// TestGolden: the encoders reproduce testdata/*.cbor byte for byte, the
// decoders give back the Go values, and each .diag is the notation of its
// .cbor.
func TestGolden(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.encode()
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			d, err := diag(got)
			if err != nil {
				t.Fatalf("diag: %v", err)
			}
			bin := filepath.Join("testdata", c.name+".cbor")
			txt := filepath.Join("testdata", c.name+".diag")
			if *update {
				if err := os.WriteFile(bin, got, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(txt, []byte(d), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(bin)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encoding differs from %s:\n got %x\nwant %x", bin, got, want)
			}
			wantDiag, err := os.ReadFile(txt)
			if err != nil {
				t.Fatal(err)
			}
			if d != string(wantDiag) {
				t.Fatalf("%s is stale:\n%s", txt, d)
			}
			c.check(t, want)
		})
	}
}

// TestGoldenTelemetryBytes pins the decimal encoding by hand: 123456.78 is
// 4([-2, 12345678]) = c4 82 21 1a 00bc614e.
func TestGoldenTelemetryBytes(t *testing.T) {
	p, err := os.ReadFile("testdata/batch-telemetry.cbor")
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x6a, 'e', 'n', 'e', 'r', 'g', 'y', '_', 'k', 'w', 'h', 0xc4, 0x82, 0x21, 0x1a, 0x00, 0xbc, 0x61, 0x4e}
	if !bytes.Contains(p, want) {
		t.Fatalf("energy_kwh is not encoded as 4([-2, 12345678]): %x", p)
	}
	b, err := Decode(p)
	if err != nil {
		t.Fatal(err)
	}
	if s := b.Recs[0].Vals["energy_kwh"].String(); s != "123456.78" {
		t.Fatalf("energy_kwh = %s", s)
	}
	if s := b.Recs[0].Vals["voltage_a_v"].String(); s != "229.7" {
		t.Fatalf("voltage_a_v = %s", s)
	}
}

const python = "/usr/bin/python3"

// runCBOR2 runs testdata/cbor2_check.py with Debian's python3-cbor2.
func runCBOR2(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%s not found: apt-get install python3 python3-cbor2", python)
	}
	if err := exec.Command(python, "-c", "import cbor2").Run(); err != nil {
		t.Fatalf("python3 cannot import cbor2 (%v): apt-get install python3-cbor2", err)
	}
	cmd := exec.Command(python, append([]string{filepath.Join("testdata", "cbor2_check.py")}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("cbor2 check failed: %v\n%s%s", err, out, stderr.String())
		}
		t.Fatal(err)
	}
	return string(out)
}

// TestCBOR2Golden: an independent implementation (Python cbor2, canonical
// mode) decodes every golden file, reads 123456.78 as a Decimal exactly,
// re-encodes each one to the same bytes, and verifies the evidence chain
// with hashlib.
func TestCBOR2Golden(t *testing.T) {
	var files []string
	for _, c := range goldenCases() {
		files = append(files, filepath.Join("testdata", c.name+".cbor"))
	}
	out := runCBOR2(t, append([]string{"golden"}, files...)...)
	for _, want := range []string{"energy_kwh Decimal('123456.78')", "evidence chain ok (3 records)", "gap 2001-2500"} {
		if !strings.Contains(out, want) {
			t.Errorf("cbor2 output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "same bytes"); n != len(files) {
		t.Errorf("cbor2 re-encoded %d of %d files to the same bytes:\n%s", n, len(files), out)
	}
}

// TestCBOR2Random: cbor2's canonical encoder agrees byte for byte with
// Encode on random batches (decimals with extreme mantissas, floats that
// fit float16 (incl. subnormals), float32 or only float64, long and
// non-ASCII keys and texts, big q and negative ts).
func TestCBOR2Random(t *testing.T) {
	g := newGen(2026)
	var seq []byte
	const n = 300
	for i := range n {
		stream := []string{StreamTelemetry, StreamEvents, StreamAlarms, StreamEvidence}[i%4]
		p, err := Encode(g.batch(goldenGW, stream, 1+uint64(i)*1000, 1+g.r.IntN(5)))
		if err != nil {
			t.Fatal(err)
		}
		seq = append(seq, p...)
	}
	f := filepath.Join(t.TempDir(), "random.cborseq")
	if err := os.WriteFile(f, seq, 0o644); err != nil {
		t.Fatal(err)
	}
	out := runCBOR2(t, "seq", f)
	if !strings.Contains(out, "300 items, all same bytes") {
		t.Fatalf("cbor2: %s", out)
	}
}
