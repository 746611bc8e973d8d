package pulse

import (
	"testing"
	"time"
)

var d0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ms(x float64) time.Time { return d0.Add(time.Duration(x * float64(time.Millisecond))) }

// feed runs raw edges through a debouncer the way Run does (settles due
// before an edge first) and returns the accepted changes, including a
// final settle.
func feed(d time.Duration, initial bool, edges []change) []change {
	b := newDebouncer(d, initial)
	var out []change
	for _, e := range edges {
		for {
			t, ok := b.due()
			if !ok || t.After(e.at) {
				break
			}
			out = append(out, b.settle())
		}
		if c, ok := b.edge(e.high, e.at); ok {
			out = append(out, c)
		}
	}
	if _, ok := b.due(); ok {
		out = append(out, b.settle())
	}
	return out
}

func TestDebouncer(t *testing.T) {
	H, L := true, false
	for _, c := range []struct {
		name  string
		d     time.Duration
		edges []change
		want  []change
	}{
		{"clean pulse", 2 * time.Millisecond,
			[]change{{H, ms(0)}, {L, ms(10)}},
			[]change{{H, ms(0)}, {L, ms(10)}}},
		{"bounce after rise is ignored", 2 * time.Millisecond,
			[]change{{H, ms(0)}, {L, ms(0.3)}, {H, ms(0.5)}, {L, ms(1.9)}, {H, ms(1.95)}, {L, ms(5)}},
			[]change{{H, ms(0)}, {L, ms(5)}}},
		{"edge exactly at the lockout end is accepted", 2 * time.Millisecond,
			[]change{{H, ms(0)}, {L, ms(2)}},
			[]change{{H, ms(0)}, {L, ms(2)}}},
		{"change during lockout settles at its end", 2 * time.Millisecond,
			[]change{{H, ms(0)}, {L, ms(1)}},
			[]change{{H, ms(0)}, {L, ms(2)}}},
		{"settle, then a glitch within the new lockout", 2 * time.Millisecond,
			[]change{{H, ms(0)}, {L, ms(1)}, {H, ms(2.5)}, {L, ms(3)}},
			[]change{{H, ms(0)}, {L, ms(2)}}},
		{"settle, then a change within the new lockout that stays", 2 * time.Millisecond,
			[]change{{H, ms(0)}, {L, ms(1)}, {H, ms(2.5)}, {L, ms(9)}},
			[]change{{H, ms(0)}, {L, ms(2)}, {H, ms(4)}, {L, ms(9)}}},
		{"repeated level (lost event) is no change", 2 * time.Millisecond,
			[]change{{H, ms(0)}, {H, ms(5)}, {L, ms(10)}},
			[]change{{H, ms(0)}, {L, ms(10)}}},
		{"no debounce passes every change", 0,
			[]change{{H, ms(0)}, {L, ms(0.001)}, {H, ms(0.002)}},
			[]change{{H, ms(0)}, {L, ms(0.001)}, {H, ms(0.002)}}},
		{"edge back in time is treated as bounce", 2 * time.Millisecond,
			[]change{{H, ms(5)}, {L, ms(4)}, {H, ms(4.5)}},
			[]change{{H, ms(5)}}},
	} {
		got := feed(c.d, false, c.edges)
		if len(got) != len(c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
			continue
		}
		for i := range got {
			if got[i].high != c.want[i].high || !got[i].at.Equal(c.want[i].at) {
				t.Errorf("%s: change %d = %v, want %v", c.name, i, got[i], c.want[i])
			}
		}
	}
}
