package pulse

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CounterStore keeps a counter's cumulative count across restarts. Save
// returns only once the count is durable (on disk): a counter saves before
// it reports a count, so a reported count is never lost.
type CounterStore interface {
	// Load returns the stored count; ok is false when none was stored.
	Load(device string) (count uint64, ok bool, err error)
	// Save stores the count durably.
	Save(device string, count uint64) error
}

// ErrStore reports a counter file that cannot be used.
var ErrStore = errors.New("pulse: counter store")

// FileCounterStore is a CounterStore with one small file per device in a
// directory: written to a temporary file, fsync'ed, renamed over the old
// one, and the directory fsync'ed, so a crash leaves the old count or the
// new one, never a torn file.
type FileCounterStore struct {
	dir string
}

// FileStore returns a file-backed CounterStore in dir (created on the first
// Save). It does no I/O.
func FileStore(dir string) *FileCounterStore { return &FileCounterStore{dir: dir} }

var _ CounterStore = (*FileCounterStore)(nil)

// Path is the file that holds device's count.
func (s *FileCounterStore) Path(device string) string {
	return filepath.Join(s.dir, fileName(device)+".count")
}

// fileName escapes a device id for a file name: letters, digits, '_' and
// '-' are kept, '.' too unless first, anything else becomes %XX.
func fileName(device string) string {
	var b strings.Builder
	for i := 0; i < len(device); i++ {
		c := device[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// Load reads device's count. A missing file is (0, false, nil); a file
// that does not hold a count is an error (never a silent restart from
// zero). Temporary files left by an interrupted Save are removed.
func (s *FileCounterStore) Load(device string) (uint64, bool, error) {
	p := s.Path(device)
	if olds, _ := filepath.Glob(p + ".tmp*"); len(olds) > 0 {
		for _, o := range olds {
			_ = os.Remove(o)
		}
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("%w: device %q: %w", ErrStore, device, err)
	}
	n, err := ParseCount(b)
	if err != nil {
		return 0, false, fmt.Errorf("%w: device %q: %s: %w", ErrStore, device, p, err)
	}
	return n, true, nil
}

// Save writes device's count durably.
func (s *FileCounterStore) Save(device string, count uint64) error {
	fail := func(err error) error { return fmt.Errorf("%w: device %q: save %d: %w", ErrStore, device, count, err) }
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fail(err)
	}
	p := s.Path(device)
	f, err := os.CreateTemp(s.dir, filepath.Base(p)+".tmp*")
	if err != nil {
		return fail(err)
	}
	tmp := f.Name()
	_, err = f.Write(FormatCount(count))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fail(err)
	}
	d, err := os.Open(s.dir)
	if err != nil {
		return fail(err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	return nil
}

// FormatCount is the counter file's content: the count in decimal and a
// newline.
func FormatCount(n uint64) []byte { return append(strconv.AppendUint(nil, n, 10), '\n') }

// ErrCount reports counter file content that is not a count.
var ErrCount = errors.New("pulse: not a counter file")

// ParseCount parses a counter file: decimal digits (no sign, no leading
// zeros) and optionally one trailing newline.
func ParseCount(b []byte) (uint64, error) {
	s := strings.TrimSuffix(string(b), "\n")
	switch {
	case s == "":
		return 0, fmt.Errorf("%w: empty", ErrCount)
	case len(s) > 20:
		return 0, fmt.Errorf("%w: %d bytes", ErrCount, len(b))
	case strings.Trim(s, "0123456789") != "":
		return 0, fmt.Errorf("%w: %q is not a decimal count", ErrCount, s)
	case len(s) > 1 && s[0] == '0':
		return 0, fmt.Errorf("%w: %q has a leading zero", ErrCount, s)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: out of range", ErrCount, s)
	}
	return n, nil
}
