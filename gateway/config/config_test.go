package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.err from the current output")

// TestBad checks every testdata/bad/*.yaml against its .err golden file:
// the exact problems, each with file:line:col, path and message.
func TestBad(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 15 {
		t.Fatalf("only %d bad cases, want at least 15", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			c, err := Load(f)
			if err == nil {
				t.Fatalf("Load(%s) = nil error, want problems", f)
			}
			if c != nil {
				t.Errorf("Load returned a config along with errors")
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %T is not Errors: %v", err, err)
			}
			var e *Error
			if !errors.As(err, &e) || e != es[0] {
				t.Fatalf("errors.As(*Error) did not find the first problem")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false")
			}
			for _, e := range es {
				if e.File != f {
					t.Errorf("problem names file %q, want %q", e.File, f)
				}
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestBad -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("problems differ from %s\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

func mustLoad(t *testing.T, path string) *Config {
	t.Helper()
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s):\n%v", path, err)
	}
	return c
}

// TestGoodSamples parses every sample config.
func TestGoodSamples(t *testing.T) {
	files, _ := filepath.Glob("testdata/good/*.yaml")
	if len(files) < 3 {
		t.Fatalf("only %d good samples", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c := mustLoad(t, f)
			if c.Gateway.ID == "" || len(c.Uplink.Brokers) == 0 {
				t.Fatalf("sample parsed to an empty config: %+v", c)
			}
		})
	}
}

// TestGoldenFilesPaired: every bad case has its .err and vice versa.
func TestGoldenFilesPaired(t *testing.T) {
	errs, _ := filepath.Glob("testdata/bad/*.err")
	for _, e := range errs {
		if _, err := os.Stat(strings.TrimSuffix(e, ".err") + ".yaml"); err != nil {
			t.Errorf("%s has no .yaml", e)
		}
	}
	yamls, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(errs) != len(yamls) {
		t.Errorf("%d .yaml but %d .err files", len(yamls), len(errs))
	}
}
