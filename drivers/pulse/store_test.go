package pulse

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFileStoreRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "counters")
	s := FileStore(dir)
	if n, ok, err := s.Load("wm-1"); n != 0 || ok || err != nil {
		t.Fatalf("empty store: %d %v %v", n, ok, err)
	}
	for _, n := range []uint64{0, 1, 12000, 1<<64 - 1} {
		if err := s.Save("wm-1", n); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := s.Load("wm-1"); got != n || !ok || err != nil {
			t.Fatalf("Load after Save(%d) = %d %v %v", n, got, ok, err)
		}
	}
	// Odd device ids stay inside the directory and apart.
	for _, dev := range []string{"../x", "a/b", ".hidden", "a%2Fb"} {
		if err := s.Save(dev, 7); err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(s.Path(dev)) != dir {
			t.Fatalf("%q stored at %s", dev, s.Path(dev))
		}
	}
	if s.Path("a/b") == s.Path("a%2Fb") {
		t.Fatal("two ids share a file")
	}
	if n, _, _ := s.Load("wm-1"); n != 1<<64-1 {
		t.Fatalf("other ids disturbed wm-1: %d", n)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 5 {
		t.Fatalf("%d files in the store, want 5 (no temporaries left)", len(ents))
	}
}

func TestFileStoreRefusesCorruptFile(t *testing.T) {
	dir := t.TempDir()
	s := FileStore(dir)
	if err := os.WriteFile(s.Path("wm-2"), []byte("12x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A torn temporary file from a killed Save is cleaned up, not read.
	if err := os.WriteFile(s.Path("wm-2")+".tmp123", []byte("99"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.Load("wm-2")
	if !errors.Is(err, ErrStore) || !errors.Is(err, ErrCount) {
		t.Fatalf("corrupt file: %v", err)
	}
	if _, err := os.Stat(s.Path("wm-2") + ".tmp123"); !os.IsNotExist(err) {
		t.Fatal("temporary file left behind")
	}
}

func TestParseCount(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "0\n": 0, "42\n": 42, "18446744073709551615": 1<<64 - 1} {
		if n, err := ParseCount([]byte(in)); n != want || err != nil {
			t.Errorf("ParseCount(%q) = %d, %v", in, n, err)
		}
	}
	for _, in := range []string{"", "\n", "-1", "+1", "01", "1 ", " 1", "1\n\n", "18446744073709551616", "0x10", "1e3"} {
		if _, err := ParseCount([]byte(in)); !errors.Is(err, ErrCount) {
			t.Errorf("ParseCount(%q) = %v, want ErrCount", in, err)
		}
	}
}

func FuzzParseCount(f *testing.F) {
	for _, s := range []string{"0\n", "12000\n", "18446744073709551615\n", "01", "", "-1", "99999999999999999999"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseCount(b)
		if err != nil {
			if !errors.Is(err, ErrCount) {
				t.Fatalf("%q: error %v is not ErrCount", b, err)
			}
			return
		}
		// What parses is canonical: it formats back to the same bytes
		// (with or without the newline).
		if f := FormatCount(n); string(f) != string(b) && string(f[:len(f)-1]) != string(b) {
			t.Fatalf("%q parsed to %d, formats as %q", b, n, f)
		}
	})
}
