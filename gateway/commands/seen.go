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

// SeenOptions bound the seen table: ids older than Keep are forgotten, and
// so are the oldest beyond Max.
type SeenOptions struct {
	Max  int              // default DefaultSeenMax
	Keep time.Duration    // default DefaultSeenKeep
	Now  func() time.Time // default time.Now
}

// Seen remembers the answer given to each recent command id, durably.
type Seen struct {
	st   Store
	o    SeenOptions
	mu   sync.Mutex
	when map[string]int64 // id → UnixMilli stored
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
	s := &Seen{st: st, o: o, when: map[string]int64{}}
	var bad []string
	err := st.Scan(func(id string, v []byte) error {
		if len(v) < 8 {
			bad = append(bad, id)
			return nil
		}
		s.when[id] = int64(binary.BigEndian.Uint64(v))
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

// Get returns the stored answer to id (an encoded wire.CommandResult).
func (s *Seen) Get(id string) ([]byte, bool, error) {
	v, ok, err := s.st.Get(id)
	if err != nil || !ok {
		return nil, false, err
	}
	if len(v) < 8 {
		return nil, false, fmt.Errorf("commands: seen id %q: value of %d bytes", id, len(v))
	}
	return v[8:], true, nil
}

// Put stores the answer to id; it returns once it is on disk.
func (s *Seen) Put(id string, result []byte) error {
	now := s.o.Now().UnixMilli()
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(result)), uint64(now))
	if err := s.st.Put(id, append(v, result...)); err != nil {
		return fmt.Errorf("commands: remember %q: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.when[id] = now
	if len(s.when) > s.o.Max+s.o.Max/10 {
		return s.pruneLocked()
	}
	return nil
}

// Len is the number of ids remembered.
func (s *Seen) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.when)
}

// pruneLocked forgets ids older than Keep, then the oldest beyond Max.
func (s *Seen) pruneLocked() error {
	cut := s.o.Now().Add(-s.o.Keep).UnixMilli()
	type idAt struct {
		id string
		at int64
	}
	all := make([]idAt, 0, len(s.when))
	for id, at := range s.when {
		all = append(all, idAt{id, at})
	}
	slices.SortFunc(all, func(a, b idAt) int {
		if a.at != b.at {
			return int(min(max(a.at-b.at, -1), 1))
		}
		if a.id < b.id {
			return -1
		}
		return 1
	})
	var drop []string
	for i, x := range all {
		if x.at < cut || len(all)-i > s.o.Max {
			drop = append(drop, x.id)
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
