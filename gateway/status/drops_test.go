package status

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type fixedDrops map[string]uint64

func (f fixedDrops) Dropped() map[string]uint64 { return maps.Clone(f) }

// The totals survive a restart: a new run starts from what the last one
// saved, and adds its own and its sources' counts.
func TestDropsSurviveARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "drops.json")
	d, err := OpenDrops(path, fixedDrops{"quota": 5})
	if err != nil {
		t.Fatal(err)
	}
	d.Add("field_rejected", 2)
	d.Add("field_rejected", 1)
	if got, want := d.Dropped(), map[string]uint64{"quota": 5, "field_rejected": 3}; !maps.Equal(got, want) {
		t.Fatalf("Dropped = %v, want %v", got, want)
	}
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	// The store counts from zero again after a restart.
	d2, err := OpenDrops(path, fixedDrops{"quota": 1, "disk_full": 4})
	if err != nil {
		t.Fatal(err)
	}
	d2.Add("field_rejected", 1)
	if got, want := d2.Dropped(), map[string]uint64{"quota": 6, "field_rejected": 4, "disk_full": 4}; !maps.Equal(got, want) {
		t.Fatalf("after a restart Dropped = %v, want %v", got, want)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("left %d files, want only drops.json", len(entries))
	}
}

func TestDropsFileProblems(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDrops(filepath.Join(dir, "none.json"))
	if err != nil || len(d.Dropped()) != 0 {
		t.Fatalf("missing file: %v %v", d.Dropped(), err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"quota": -1}`), 0o600)
	d, err = OpenDrops(bad)
	if err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Fatalf("bad file: %v", err)
	}
	d.Add("quota", 1)
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDrops(bad); err != nil {
		t.Fatalf("after Save replaced the bad file: %v", err)
	}
	mem, _ := OpenDrops("")
	mem.Add("x", 1)
	if err := mem.Save(); err != nil || mem.Dropped()["x"] != 1 {
		t.Fatalf("in-memory Drops: %v %v", mem.Dropped(), err)
	}
}

func TestDecodeDropsRejectsGarbage(t *testing.T) {
	for in, want := range map[string]string{
		`null`:                            "null",
		`[1]`:                             "not a JSON object",
		`{"": 1}`:                         `reason ""`,
		`{"Quota": 1}`:                    "lower case",
		`{"quota": 1.5}`:                  "not a JSON object",
		`{"quota": "1"}`:                  "not a JSON object",
		`{"a b": 1}`:                      "lower case",
		`{"quota": 18446744073709551616}`: "not a JSON object",
	} {
		if _, err := decodeDrops([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("decodeDrops(%s) = %v, want an error containing %q", in, err, want)
		}
	}
	m, err := decodeDrops([]byte(`{"quota": 18446744073709551615, "disk_full": 0}`))
	if err != nil || m["quota"] != 1<<64-1 || len(m) != 2 {
		t.Fatalf("decodeDrops of a good file = %v, %v", m, err)
	}
}

func FuzzDecodeDrops(f *testing.F) {
	f.Add([]byte(`{"quota": 3, "field_rejected": 1}`))
	f.Add([]byte(`{"": 1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeDrops(b)
		if err != nil {
			return
		}
		if len(m) > maxReasons {
			t.Fatalf("%d reasons accepted", len(m))
		}
		for k := range m {
			if k == "" || strings.Trim(k, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
				t.Fatalf("reason %q accepted", k)
			}
		}
	})
}
