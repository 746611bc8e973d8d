package commands

import (
	"context"
	"sort"
	"sync"

	"github.com/townlink/townlink/uplink/wire"
)

// memStore is an in-memory Store for unit tests (the real one is
// badgerq.KV, used by the end-to-end tests).
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newMemStore() *memStore { return &memStore{m: map[string][]byte{}} }

func (s *memStore) Get(k string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	return append([]byte(nil), v...), ok, nil
}

func (s *memStore) Put(k string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = append([]byte(nil), v...)
	return nil
}

func (s *memStore) Delete(ks ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range ks {
		delete(s.m, k)
	}
	return nil
}

func (s *memStore) Scan(fn func(string, []byte) error) error {
	s.mu.Lock()
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	sort.Strings(keys)
	for _, k := range keys {
		v, _, _ := s.Get(k)
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// memResults collects answers.
type memResults struct {
	mu  sync.Mutex
	out []*wire.CommandResult
	raw [][]byte
}

func (r *memResults) Append(_ context.Context, data ...[]byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range data {
		res, err := wire.DecodeCommandResult(d)
		if err != nil {
			return err
		}
		r.out = append(r.out, res)
		r.raw = append(r.raw, append([]byte(nil), d...))
	}
	return nil
}

func (r *memResults) all() []*wire.CommandResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*wire.CommandResult(nil), r.out...)
}
