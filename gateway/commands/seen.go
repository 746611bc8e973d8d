package commands

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Store is a durable key-value table (badgerq.KV implements it): Put and
// Delete return once the change is on disk.
type Store interface {
	Get(key string) ([]byte, bool, error)
	Put(key string, val []byte) error
	Delete(keys ...string) error
	Scan(fn func(key string, val []byte) error) error
}

// Bounds of the seen table, defaults of SeenOptions.
const (
	DefaultSeenMax  = 10000
	DefaultSeenKeep = 7 * 24 * time.Hour
)

// SeenOptions bound the seen table: answered ids older than Keep are
// forgotten, and so are the oldest beyond Max. Commands waiting or
// running are never forgotten.
type SeenOptions struct {
	Max  int              // default DefaultSeenMax
	Keep time.Duration    // default DefaultSeenKeep
	Now  func() time.Time // default time.Now
}

// Entry is what the table holds for an id: the command, received and not
// yet started, or the answer given to it.
type Entry struct {
	Command []byte // encoded wire.Command, while it waits to run
	Result  []byte // encoded wire.CommandResult, once answered or started
	// Started: Result is the answer to give if the command's run ends
	// without one (the gateway stopped), and has not been sent yet.
	Started bool
}

// Value layout: UnixMilli stored (8 bytes, big-endian), kind, payload.
const (
	kindResult  = 'R'
	kindCommand = 'C'
	kindStarted = 'S'
	valHdr      = 9
)

type seenAt struct {
	at   int64
	n    uint64 // order of arrival within one process, for ties
	kind byte
}

// Seen is the durable table of recent command ids: the commands waiting
// to run (the command queue itself) and the answers given.
type Seen struct {
	st   Store
	o    SeenOptions
	mu   sync.Mutex
	n    uint64
	when map[string]seenAt
}

// OpenSeen loads the ids kept in st and forgets those out of bounds.
func OpenSeen(st Store, o SeenOptions) (*Seen, error) {
	if o.Max <= 0 {
		o.Max = DefaultSeenMax
	}
	if o.Keep <= 0 {
		o.Keep = DefaultSeenKeep
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Seen{st: st, o: o, when: map[string]seenAt{}}
	var bad []string
	err := st.Scan(func(id string, v []byte) error {
		if len(v) < valHdr || (v[8] != kindResult && v[8] != kindCommand && v[8] != kindStarted) {
			bad = append(bad, id)
			return nil
		}
		s.when[id] = seenAt{at: int64(binary.BigEndian.Uint64(v)), kind: v[8]}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("commands: load seen ids: %w", err)
	}
	if err := st.Delete(bad...); err != nil {
		return nil, fmt.Errorf("commands: drop corrupt seen ids: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.pruneLocked(); err != nil {
		return nil, err
	}
	return s, nil
}

// Get returns what the table holds for id.
func (s *Seen) Get(id string) (Entry, bool, error) {
	v, ok, err := s.st.Get(id)
	if err != nil || !ok {
		return Entry{}, false, err
	}
	if len(v) < valHdr {
		return Entry{}, false, fmt.Errorf("commands: seen id %q: value of %d bytes", id, len(v))
	}
	switch v[8] {
	case kindResult:
		return Entry{Result: v[valHdr:]}, true, nil
	case kindCommand:
		return Entry{Command: v[valHdr:]}, true, nil
	case kindStarted:
		return Entry{Result: v[valHdr:], Started: true}, true, nil
	}
	return Entry{}, false, fmt.Errorf("commands: seen id %q: unknown kind %#x", id, v[8])
}

// Put stores the answer to id; it returns once it is on disk.
func (s *Seen) Put(id string, result []byte) error { return s.put(id, kindResult, result) }

// PutPending stores a command received and not yet started; it returns
// once it is on disk.
func (s *Seen) PutPending(id string, cmd []byte) error { return s.put(id, kindCommand, cmd) }

// PutStarted stores, as a command starts, the answer to give if its run
// ends without one; it returns once it is on disk.
func (s *Seen) PutStarted(id string, result []byte) error { return s.put(id, kindStarted, result) }

func (s *Seen) put(id string, kind byte, data []byte) error {
	now := s.o.Now().UnixMilli()
	v := binary.BigEndian.AppendUint64(make([]byte, 0, valHdr+len(data)), uint64(now))
	v = append(append(v, kind), data...)
	if err := s.st.Put(id, v); err != nil {
		return fmt.Errorf("commands: remember %q: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	s.when[id] = seenAt{at: now, n: s.n, kind: kind}
	if len(s.when) > s.o.Max+s.o.Max/10 {
		return s.pruneLocked()
	}
	return nil
}

// Pending returns the ids of the commands waiting to run, oldest first.
func (s *Seen) Pending() []string { return s.ids(kindCommand) }

// Started returns the ids of the commands started and not answered,
// oldest first (after a restart: those the gateway stopped in).
func (s *Seen) Started() []string { return s.ids(kindStarted) }

func (s *Seen) ids(kind byte) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, w := range s.when {
		if w.kind == kind {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int { return s.cmpLocked(a, b) })
	return ids
}

// PendingLen is how many commands wait to run.
func (s *Seen) PendingLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, w := range s.when {
		if w.kind == kindCommand {
			n++
		}
	}
	return n
}

// Len is the number of ids remembered.
func (s *Seen) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.when)
}

// cmpLocked orders ids by when they were stored, then arrival, then id.
func (s *Seen) cmpLocked(a, b string) int {
	wa, wb := s.when[a], s.when[b]
	switch {
	case wa.at != wb.at:
		return cmpInt(wa.at, wb.at)
	case wa.n != wb.n:
		return cmpInt(wa.n, wb.n)
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpInt[T int64 | uint64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// pruneLocked forgets answered ids older than Keep, then the oldest
// answered ids beyond Max.
func (s *Seen) pruneLocked() error {
	cut := s.o.Now().Add(-s.o.Keep).UnixMilli()
	ids := make([]string, 0, len(s.when))
	for id, w := range s.when {
		if w.kind == kindResult {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, s.cmpLocked)
	var drop []string
	for i, id := range ids {
		if s.when[id].at < cut || len(ids)-i > s.o.Max {
			drop = append(drop, id)
		}
	}
	if err := s.st.Delete(drop...); err != nil {
		return fmt.Errorf("commands: forget old ids: %w", err)
	}
	for _, id := range drop {
		delete(s.when, id)
	}
	return nil
}
