package fieldbroker

import (
	"context"
	"net"
	"sync"
	"time"
)

// gate bounds the connections that have not logged in yet, in total and
// per source address (shared by both listeners).
type gate struct {
	max, perAddr int

	mu     sync.Mutex
	n      int
	byAddr map[string]int
}

func newGate(max, perAddr int) *gate {
	return &gate{max: max, perAddr: perAddr, byAddr: make(map[string]int)}
}

// enter takes a slot for addr; false if the total or addr's share is full.
func (g *gate) enter(addr string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n >= g.max || g.byAddr[addr] >= g.perAddr {
		return false
	}
	g.n++
	g.byAddr[addr]++
	return true
}

func (g *gate) leave(addr string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.byAddr[addr]--; g.byAddr[addr] <= 0 {
		delete(g.byAddr, addr)
	}
}

// addrOf is the source address a connection counts against: its IP.
func addrOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// maxStrikeKeys bounds the failure table; when it is full, keys that are
// not in it share one entry (so a flood of new addresses is slowed as one).
const maxStrikeKeys = 4096

// overflowKey is the shared entry of keys that find the table full.
const overflowKey = "\x00overflow"

// strikes counts consecutive failures per key (a source address, a
// username) and says how long the next try waits: Backoff grows with each
// failure and is forgotten after 2·Max without one.
type strikes struct {
	bo Backoff

	mu        sync.Mutex
	m         map[string]*strike
	lastPrune time.Time
}

type strike struct {
	n    int
	last time.Time
}

func newStrikes(bo Backoff) *strikes { return &strikes{bo: bo, m: make(map[string]*strike)} }

func (s *strikes) forget() time.Duration { return 2 * s.bo.Max }

// delay is the wait due before the next try of any of keys: the largest.
func (s *strikes) delay(now time.Time, keys ...string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d time.Duration
	for _, k := range keys {
		e := s.m[k]
		if e == nil {
			if len(s.m) < maxStrikeKeys {
				continue
			}
			e = s.m[overflowKey]
		}
		if e != nil && now.Sub(e.last) < s.forget() {
			d = max(d, s.bo.wait(e.n))
		}
	}
	return d
}

// fail records a failure of each key.
func (s *strikes) fail(now time.Time, keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		e := s.m[k]
		if e == nil {
			if len(s.m) >= maxStrikeKeys && now.Sub(s.lastPrune) >= time.Second {
				s.pruneLocked(now) // at most once a second: O(table)
			}
			if len(s.m) >= maxStrikeKeys {
				k = overflowKey
				e = s.m[k]
			}
		}
		if e == nil {
			e = &strike{}
			s.m[k] = e
		}
		if now.Sub(e.last) >= s.forget() {
			e.n = 0
		}
		e.n++
		e.last = now
	}
}

func (s *strikes) pruneLocked(now time.Time) {
	s.lastPrune = now
	for k, e := range s.m {
		if now.Sub(e.last) >= s.forget() {
			delete(s.m, k)
		}
	}
}

// wait is the delay after n consecutive failures (0 for none).
func (bo Backoff) wait(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := bo.First
	for i := 1; i < n && d < bo.Max; i++ {
		d *= 2
	}
	return min(d, bo.Max)
}

// sleep waits d or until ctx ends; it reports whether it waited all of d.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
