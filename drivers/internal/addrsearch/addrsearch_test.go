package addrsearch

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
)

// bus is a line of devices answering a pattern the way meters do: each
// device whose address matches answers; two or more collide.
type bus struct {
	addrs   [][]byte
	garbled []byte // a device whose replies are always broken
	// wiredAND: colliding replies add up to one valid reply from the
	// bitwise AND of the addresses, as on a bus where the driven 0 wins
	// and the checksum happens to fit.
	wiredAND bool
	probes   int
}

func match(pattern, addr []byte) bool {
	for i := range pattern {
		if pattern[i] != Wild && pattern[i] != addr[i] {
			return false
		}
	}
	return true
}

func (b *bus) probe(_ context.Context, pattern []byte) (Outcome, []byte, error) {
	b.probes++
	var hit [][]byte
	for _, a := range b.addrs {
		if match(pattern, a) {
			hit = append(hit, a)
		}
	}
	if b.garbled != nil && match(pattern, b.garbled) {
		return Collision, nil, nil
	}
	switch len(hit) {
	case 0:
		return Silence, nil, nil
	case 1:
		return Answer, hit[0], nil
	}
	if b.wiredAND {
		and := slices.Clone(hit[0])
		for _, a := range hit[1:] {
			for i := range and {
				and[i] &= a[i]
			}
		}
		return Answer, and, nil
	}
	return Collision, nil, nil
}

func sorted(as [][]byte) [][]byte {
	as = slices.Clone(as)
	slices.SortFunc(as, bytes.Compare)
	return as
}

var lowFirst = []int{0, 1, 2, 3, 4, 5}

func TestSearchFindsEveryDevice(t *testing.T) {
	cases := map[string][][]byte{
		"one":            {{0x01, 0x00, 0x30, 0x11, 0x26, 0x20}},
		"low bytes":      {{0x01, 0, 0x30, 0x11, 0x26, 0x20}, {0x02, 0, 0x30, 0x11, 0x26, 0x20}, {0x03, 0, 0x30, 0x11, 0x26, 0x20}},
		"high byte only": {{0x01, 0, 0, 0, 0, 0x20}, {0x01, 0, 0, 0, 0, 0x19}},
		"non-BCD":        {{0x81, 0x04, 0x00, 0x07, 0x21, 0x3A}, {0x81, 0x04, 0x00, 0x07, 0x21, 0x3B}},
		"none":           {},
	}
	for name, addrs := range cases {
		t.Run(name, func(t *testing.T) {
			b := &bus{addrs: addrs}
			var lastDone int
			got, err := Search(context.Background(), 6, lowFirst, b.probe, func(done, left, found int) {
				if done < lastDone || done > lastDone+1 || left < 0 || found > len(addrs) {
					t.Errorf("progress %d, %d, %d after %d", done, left, found, lastDone)
				}
				lastDone = done
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(sorted(got), sorted(addrs), bytes.Equal) {
				t.Errorf("found % X, want % X", got, addrs)
			}
			if lastDone != b.probes {
				t.Errorf("progress said %d probes, the bus saw %d", lastDone, b.probes)
			}
		})
	}
}

// A collision that looks like a clean reply from an address no device has
// is caught when that address is asked on its own.
func TestSearchSeesThroughWiredANDPhantoms(t *testing.T) {
	addrs := [][]byte{{0x01, 0x10, 0, 0, 0, 0x20}, {0x02, 0x10, 0, 0, 0, 0x20}, {0x14, 0x20, 0, 0, 0, 0x20}, {0x14, 0x40, 0, 0, 0, 0x20}}
	b := &bus{addrs: addrs, wiredAND: true}
	got, err := Search(context.Background(), 6, lowFirst, b.probe, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(sorted(got), sorted(addrs), bytes.Equal) {
		t.Errorf("found % X, want % X", got, addrs)
	}
}

func TestSearchReportsGarbledDevice(t *testing.T) {
	b := &bus{addrs: [][]byte{{0x01, 0, 0, 0, 0, 0}}, garbled: []byte{0x02, 0, 0, 0, 0, 0}}
	got, err := Search(context.Background(), 6, lowFirst, b.probe, nil)
	if !errors.Is(err, ErrUnresolved) {
		t.Fatalf("err = %v, want ErrUnresolved", err)
	}
	if len(got) != 1 || !bytes.Equal(got[0], b.addrs[0]) {
		t.Errorf("found % X, want only % X", got, b.addrs[0])
	}
}

func TestSearchStopsOnCancel(t *testing.T) {
	b := &bus{addrs: [][]byte{{0x01, 0, 0, 0, 0, 0}, {0x50, 0, 0, 0, 0, 0}}}
	ctx, cancel := context.WithCancel(context.Background())
	got, err := Search(ctx, 6, lowFirst, func(ctx context.Context, p []byte) (Outcome, []byte, error) {
		out, a, err := b.probe(ctx, p)
		if out == Answer {
			cancel() // stop after the first device
		}
		return out, a, err
	}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if len(got) != 1 {
		t.Errorf("found % X, want the one found before the cancel", got)
	}
}

// FuzzParse: whatever was heard, frames and noise account for no more
// bytes than there were, and nothing heard is Silence.
func FuzzParse(f *testing.F) {
	f.Add([]byte{0xFE, 0x68, 1, 2, 0x16})
	f.Add([]byte{})
	split := func(b []byte) (int, int, error) { // frames are 68 xx 16
		i := bytes.IndexByte(b, 0x68)
		switch {
		case i < 0:
			return len(b), 0, nil
		case i > 0:
			return i, 0, nil
		case len(b) < 3:
			return 0, 0, nil
		case b[2] != 0x16:
			return 1, 0, nil
		}
		return 0, 3, nil
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h := Parse(b, split, 0xFE, nil)
		if 3*len(h.Frames)+h.Noise > len(b) {
			t.Fatalf("% X: %d frames and %d noise bytes", b, len(h.Frames), h.Noise)
		}
		if len(b) == 0 && h.Outcome() != Silence {
			t.Fatalf("nothing heard is %v", h.Outcome())
		}
	})
}
