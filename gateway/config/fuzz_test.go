package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzParse: random input never panics; a problem is always Errors of
// *Error naming the file, with Line ≥ 1 unless it is about the whole file;
// an accepted config holds the invariants the rest of the gateway relies on.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.yaml")
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("gateway: &g {id: a}\nuplink: *g\n"))
	f.Add([]byte("devices: [{<<: [*x]}]"))
	f.Add([]byte("\t- a\n"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("a: \xff\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			if c != nil {
				t.Fatalf("config and error both returned")
			}
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %T is not a non-empty Errors: %v", err, err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			for _, e := range es {
				if e.File != "fuzz.yaml" || e.Msg == "" || e.Line < 0 || e.Col < 0 {
					t.Fatalf("bad problem %#v", e)
				}
				if e.Line == 0 && (len(es) != 1 || e.Col != 0) {
					t.Fatalf("a problem without a line must be the only one (about the whole file): %v", err)
				}
			}
			if len(es) > maxErrors+1 {
				t.Fatalf("%d problems reported", len(es))
			}
			return
		}
		if c == nil {
			t.Fatal("nil config and nil error")
		}
		if !validGatewayID(c.Gateway.ID) || len(c.Uplink.Brokers) == 0 {
			t.Fatalf("accepted config without id or brokers: %+v", c)
		}
		ids := map[string]bool{}
		lines := map[string]bool{}
		for _, l := range c.Lines {
			if err := l.Mode().Validate(); err != nil {
				t.Fatalf("accepted line %s: %v", l.Name, err)
			}
			lines[l.Name] = true
		}
		for _, d := range c.Devices {
			if !validDeviceID(d.ID) || ids[d.ID] {
				t.Fatalf("accepted device id %q", d.ID)
			}
			ids[d.ID] = true
			if d.Kind == "" || d.Driver == "" {
				t.Fatalf("device %s without kind or driver", d.ID)
			}
			if d.Driver.Polled() && (d.Interval < 100*time.Millisecond || d.Timeout <= 0) {
				t.Fatalf("device %s interval %s timeout %s", d.ID, d.Interval, d.Timeout)
			}
			if d.Driver.Serial() && !lines[d.Line] {
				t.Fatalf("device %s on unknown line %q", d.ID, d.Line)
			}
		}
		_ = c.Redacted()
	})
}

// FuzzParseByteSize: no panic; an accepted size formats and parses back.
func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"0", "65536", "64KiB", "512MiB", "2GiB", "1.5GiB", "3TiB", "10B", "2GB", "-1", "1e3", " 1 MiB", "9999999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseByteSize(s)
		if err != nil {
			if !strings.Contains(err.Error(), "config: bad byte size") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		if b < 0 {
			t.Fatalf("ParseByteSize(%q) = %d", s, b)
		}
		if back, err := ParseByteSize(b.String()); err != nil || back != b {
			t.Fatalf("%q → %d → %q → %d, %v", s, b, b.String(), back, err)
		}
	})
}
