// Package addrsearch finds every device on a multi-drop line whose
// protocol lets a request address bytes be wildcards (DL/T 645 and CJ/T
// 188: a byte 0xAA matches any value). It is the collision-resolving
// depth-first search both drivers share; the drivers supply the probe.
//
// A probe sends one request to a pattern (some bytes fixed, the others
// 0xAA) and says what came back: nothing (no device matches), one clean
// reply (exactly one device matches; the reply names it) or bytes that do
// not form a valid frame (a collision: more than one device matches, so
// the search fixes one more byte and tries each value).
package addrsearch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
)

// Wild is the wildcard byte.
const Wild = 0xAA

// Outcome is what one probe heard.
type Outcome uint8

// Outcomes.
const (
	Silence   Outcome = iota // nothing at all: no device matches the pattern
	Answer                   // one valid reply: Probe returns its address
	Collision                // bytes that are not one valid frame: several devices (or noise)
)

func (o Outcome) String() string {
	switch o {
	case Silence:
		return "silence"
	case Answer:
		return "answer"
	case Collision:
		return "collision"
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// Probe sends one request to pattern and reports the outcome and, for
// Answer, what identifies the device that answered: its full address in
// the last n bytes, optionally preceded by more (CJ/T 188: the meter
// type), kept in the result. An error other than the context's ends the
// search.
type Probe func(ctx context.Context, pattern []byte) (Outcome, []byte, error)

// Progress is called after every probe: done probes so far, an estimate
// of the probes left (pending refinements × their values) and the number
// of devices found so far.
type Progress func(done, left, found int)

// ErrUnresolved: a fully specified address still answered garbled (a
// device with a bad transmitter, or noise); it is reported, not found.
var ErrUnresolved = errors.New("addrsearch: garbled reply at a full address")

// Search finds every address of n bytes that answers probe. A clean
// answer to a pattern with wildcards is confirmed by asking the address it
// names on its own (a wired-AND collision can look like a valid frame
// from an address no device has). order gives
// the byte positions to fix, first to last (e.g. low byte first, where
// meter numbers of one batch differ). It returns the addresses found, in
// the order found, and the patterns that stayed garbled down to a full
// address (joined into an error wrapping ErrUnresolved, beside the
// addresses). On ctx's end it returns what it found so far and ctx.Err().
func Search(ctx context.Context, n int, order []int, probe Probe, progress Progress) ([][]byte, error) {
	if len(order) != n {
		return nil, fmt.Errorf("addrsearch: order has %d positions for %d bytes", len(order), n)
	}
	s := &searcher{probe: probe, progress: progress, order: order, seen: map[string]bool{}}
	root := make([]byte, n)
	for i := range root {
		root[i] = Wild
	}
	err := s.visit(ctx, root, 0)
	if err == nil && len(s.garbled) > 0 {
		err = fmt.Errorf("%w: %d pattern(s), e.g. % X", ErrUnresolved, len(s.garbled), s.garbled[0])
	}
	return s.found, err
}

type searcher struct {
	probe    Probe
	progress Progress
	order    []int
	found    [][]byte
	seen     map[string]bool
	garbled  [][]byte
	done     int
	pending  int // byte values still to try in open refinements
}

// values are the byte values tried when refining a position: the BCD
// values 00-99 first (meter numbers), then the rest except the wildcard.
func values() []byte {
	v := make([]byte, 0, 255)
	for hi := range byte(10) {
		for lo := range byte(10) {
			v = append(v, hi<<4|lo)
		}
	}
	for b := range 256 {
		if x := byte(b); x&0x0F > 9 || x>>4 > 9 {
			if x != Wild {
				v = append(v, x)
			}
		}
	}
	return v
}

const bcdValues = 100

func (s *searcher) step(ctx context.Context, pattern []byte) (Outcome, error) {
	out, id, err := s.ask(ctx, pattern)
	if err != nil || out != Answer {
		return out, err
	}
	if len(id) < len(pattern) {
		return Collision, nil
	}
	addr := id[len(id)-len(pattern):]
	if !bytes.Equal(addr, pattern) {
		// Wired-AND collisions can add up to a valid frame from an
		// address no device has: ask that address on its own.
		again, id2, err := s.ask(ctx, addr)
		if err != nil {
			return again, err
		}
		if again != Answer || !bytes.Equal(id2, id) {
			return Collision, nil
		}
	}
	s.add(id)
	if s.progress != nil {
		s.progress(s.done, s.pending, len(s.found))
	}
	return Answer, nil
}

func (s *searcher) ask(ctx context.Context, pattern []byte) (Outcome, []byte, error) {
	out, id, err := s.probe(ctx, pattern)
	s.done++
	if s.progress != nil {
		s.progress(s.done, s.pending, len(s.found))
	}
	return out, id, err
}

func (s *searcher) add(addr []byte) {
	k := string(addr)
	if !s.seen[k] {
		s.seen[k] = true
		s.found = append(s.found, append([]byte(nil), addr...))
	}
}

// visit probes pattern (depth positions already fixed) and refines it on
// a collision.
func (s *searcher) visit(ctx context.Context, pattern []byte, depth int) error {
	out, err := s.step(ctx, pattern)
	if err != nil || out != Collision {
		return err
	}
	// Ask again before refining (a hundred probes or more): noise passes,
	// a real collision stays.
	if out, err = s.step(ctx, pattern); err != nil || out != Collision {
		return err
	}
	if depth == len(s.order) {
		s.garbled = append(s.garbled, append([]byte(nil), pattern...))
		return nil
	}
	return s.refine(ctx, pattern, depth)
}

// refine tries every value of the next position: the BCD values, then,
// if fewer than two devices turned up below a collision, the others.
func (s *searcher) refine(ctx context.Context, pattern []byte, depth int) error {
	pos := s.order[depth]
	vals := values()
	s.pending += bcdValues
	before := len(s.found)
	for i, v := range vals {
		if i == bcdValues {
			if len(s.found)-before >= 2 {
				return nil
			}
			s.pending += len(vals) - bcdValues
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		s.pending--
		child := append([]byte(nil), pattern...)
		child[pos] = v
		if err := s.visit(ctx, child, depth+1); err != nil {
			return err
		}
	}
	return nil
}
