package status

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
)

// ErrDrops reports a drop counter file that cannot be used.
var ErrDrops = errors.New("status: drop counters")

// Drops counts records discarded on purpose, by reason: the gateway's own
// (Add) plus other sources' (a store's DB.Dropped, which counts since
// Open), on top of the totals an earlier run saved, so that the status's
// figures do not restart at 0 after a restart. Safe for concurrent use.
type Drops struct {
	path    string
	sources []Dropper

	mu   sync.Mutex
	base map[string]uint64 // totals saved by earlier runs
	own  map[string]uint64

	saveMu sync.Mutex        // one Save at a time; Add never waits for a write
	saved  map[string]uint64 // what the file holds
}

// OpenDrops loads the totals saved at path ("": not kept) and adds the
// sources' counts to them. A missing file starts from zero. A file that
// cannot be read or decoded also starts from zero, and the error says
// why; the returned Drops is usable either way, and its next Save
// replaces the file.
func OpenDrops(path string, sources ...Dropper) (*Drops, error) {
	d := &Drops{path: path, sources: sources, base: map[string]uint64{}, own: map[string]uint64{}}
	if path == "" {
		return d, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return d, fmt.Errorf("%w: %w", ErrDrops, err)
	}
	m, err := decodeDrops(b)
	if err != nil {
		return d, fmt.Errorf("%w: %s: %w", ErrDrops, path, err)
	}
	d.base, d.saved = m, maps.Clone(m)
	return d, nil
}

// Add counts n records dropped for reason.
func (d *Drops) Add(reason string, n uint64) {
	d.mu.Lock()
	d.own[reason] += n
	d.mu.Unlock()
}

// Dropped returns the totals by reason.
func (d *Drops) Dropped() map[string]uint64 {
	d.mu.Lock()
	m := maps.Clone(d.base)
	for k, v := range d.own {
		m[k] += v
	}
	d.mu.Unlock()
	for _, s := range d.sources {
		for k, v := range s.Dropped() {
			m[k] += v
		}
	}
	return m
}

// Save writes the totals when they changed since the last Save (written
// to a temporary file, synced, then renamed over the old one).
func (d *Drops) Save() error {
	if d.path == "" {
		return nil
	}
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	m := d.Dropped()
	if maps.Equal(m, d.saved) {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDrops, err)
	}
	if err := writeSynced(d.path, b); err != nil {
		return fmt.Errorf("%w: %w", ErrDrops, err)
	}
	d.saved = m
	return nil
}

func writeSynced(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// maxReasons bounds a drop counter file.
const maxReasons = 64

// decodeDrops parses a drop counter file: a JSON object of reason →
// count, reasons words of lower case letters, digits and '_' (quota,
// disk_full, field_rejected).
func decodeDrops(b []byte) (map[string]uint64, error) {
	var m map[string]uint64
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("not a JSON object of reason → count: %w", err)
	}
	if m == nil {
		return nil, errors.New("not a JSON object of reason → count: null")
	}
	if len(m) > maxReasons {
		return nil, fmt.Errorf("%d reasons, at most %d", len(m), maxReasons)
	}
	for k := range m {
		if k == "" || len(k) > 64 {
			return nil, fmt.Errorf("reason %q: want 1 to 64 bytes", k)
		}
		for _, r := range k {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
				return nil, fmt.Errorf("reason %q: want lower case letters, digits and '_'", k)
			}
		}
	}
	return m, nil
}
