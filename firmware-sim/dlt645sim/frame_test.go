package dlt645sim

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/townlink/townlink/internal/testkit"
)

// vector is one public frame from testdata/frames.json (copied from
// shared/vectors/frames.json; each names its source).
type vector struct {
	Protocol      string `json:"protocol"`
	Direction     string `json:"direction"`
	Hex           string `json:"hex"`
	Source        string `json:"source"`
	ChecksumOK    bool   `json:"checksum_ok"`
	ExpectedValid *bool  `json:"expected_valid"`
	Meaning       struct {
		PreambleFE  int    `json:"preamble_FE"`
		AddressWire string `json:"address_wire"`
		Control     string `json:"control"`
		Data        string `json:"data_minus33"`
	} `json:"meaning"`
}

func (v vector) valid() bool { return v.ChecksumOK && (v.ExpectedValid == nil || *v.ExpectedValid) }

func loadVectors(t testing.TB) []vector {
	t.Helper()
	var f struct{ Frames []vector }
	testkit.ReadJSON(t, "testdata/frames.json", &f)
	if len(f.Frames) == 0 {
		t.Fatal("testdata/frames.json has no frames")
	}
	return f.Frames
}

// Every public frame, request or reply, is found by the parser with the
// documented address, control code and DATA; every deliberately broken one
// is rejected.
func TestScanPublicFrames(t *testing.T) {
	for _, v := range loadVectors(t) {
		buf := testkit.Unhex(t, v.Hex)
		f, start, end, _, ok := scan(buf)
		if !v.valid() {
			if ok {
				t.Errorf("%s: accepted a broken frame (%s)", v.Hex, v.Source)
			}
			continue
		}
		if !ok {
			t.Errorf("%s: not parsed (%s)", v.Hex, v.Source)
			continue
		}
		if start != v.Meaning.PreambleFE || end != len(buf) {
			t.Errorf("%s: frame at [%d:%d], want [%d:%d]", v.Hex, start, end, v.Meaning.PreambleFE, len(buf))
		}
		if got := strings.ToUpper(hex.EncodeToString(f.addr[:])); got != v.Meaning.AddressWire {
			t.Errorf("%s: address %s, want %s", v.Hex, got, v.Meaning.AddressWire)
		}
		if got := "0x" + strings.ToUpper(hex.EncodeToString([]byte{f.c})); got != v.Meaning.Control {
			t.Errorf("%s: control %s, want %s", v.Hex, got, v.Meaning.Control)
		}
		if want := testkit.Unhex(t, v.Meaning.Data); !bytes.Equal(f.data, want) {
			t.Errorf("%s: data % X, want % X", v.Hex, f.data, want)
		}
		if re := f.encode(start); !bytes.Equal(re, buf) {
			t.Errorf("%s: re-encodes as % X", v.Hex, re)
		}
	}
}

func TestScanResyncsAfterNoiseAndBadFrames(t *testing.T) {
	good := testkit.Unhex(t, "FE FE FE FE 68 43 10 00 11 34 00 68 11 04 33 33 39 35 51 16")
	bad := testkit.Unhex(t, "68 01 72 00 72 00 00 68 91 08 33 33 34 33 33 33 33 33 E8 16") // CS corrupted
	buf := append(append(append([]byte{0x00, 0x68, 0x68, 0x12}, bad...), 0x55, 0xFE), good...)
	f, start, end, _, ok := scan(buf)
	if !ok || end != len(buf) || start != len(buf)-len(good)+4 || f.c != 0x11 {
		t.Fatalf("scan = ok %v [%d:%d] c %02X; want the good frame at the end", ok, start, end, f.c)
	}
	// An incomplete false start does not hide a complete frame behind it.
	partial := append([]byte{0x68, 1, 2, 3, 4, 5, 6, 0x68, 0x11, 0xC8}, good...)
	if _, _, _, _, ok := scan(partial); !ok {
		t.Fatal("a long incomplete candidate hid a complete frame")
	}
	// Half a frame: nothing yet, and nothing may be dropped from its 68 on.
	half := good[:10]
	if _, _, _, keep, ok := scan(half); ok || keep != 4 {
		t.Fatalf("half frame: ok %v keep %d, want false 4", ok, keep)
	}
}

// FuzzRequest feeds arbitrary bytes to the request parser and to 2007 and
// 1997 meters: nothing panics, and whatever is accepted re-encodes to the
// same bytes.
func FuzzRequest(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(testkit.Unhex(f, v.Hex))
	}
	f.Add([]byte{0x68, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0x68, 0x11, 0x04, 0x34, 0x33, 0x33, 0x39, 0x00, 0x16})
	f.Add(frame{addr: [6]byte{0x99, 0x99, 0x99, 0x99, 0x99, 0x99}, c: 0x08, data: []byte{0x59, 0x59, 0x23, 0x31, 0x12, 0x99}}.encode(2))
	f.Add(frame{addr: [6]byte{0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA}, c: 0x11, data: []byte{0x01, 0x00, 0x00, 0x06, 0x96}}.encode(0))
	f.Add(frame{addr: [6]byte{0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA}, c: 0x12, data: []byte{0x01, 0x00, 0x00, 0x06, 0x01}}.encode(0))
	m07 := NewMeter("AAAAAAAAAAAA", V2007)
	m97 := NewMeter("AAAAAAAAAAAA", V1997)
	m07.SetFault(Garbage(0.5))
	m97.SetFault(NoiseBefore)
	f.Fuzz(func(t *testing.T, buf []byte) {
		for len(buf) > 0 {
			fr, start, end, keep, ok := scan(buf)
			if !ok {
				if keep < 0 || keep > len(buf) {
					t.Fatalf("keep %d of %d", keep, len(buf))
				}
				return
			}
			if start < 0 || end <= start || end > len(buf) {
				t.Fatalf("frame at [%d:%d] of %d", start, end, len(buf))
			}
			if re := fr.encode(0); !bytes.Equal(re, buf[start:end]) {
				t.Fatalf("accepted % X, re-encodes as % X", buf[start:end], re)
			}
			m07.handle(fr)
			m97.handle(fr)
			buf = buf[end:]
		}
	})
}
