package pulse

import "time"

// debouncer turns raw edges (with their timestamps) into accepted level
// changes. The algorithm, "lockout with settle":
//
//  1. An edge that changes the level from the accepted (stable) one is
//     accepted at its own timestamp when at least d has passed since the
//     previous accepted change (or there was none yet).
//  2. Edges within d after an accepted change are bounce: they only move
//     the raw level.
//  3. When the lockout ends (previous change + d) and the raw level then
//     differs from the stable one, the line has settled elsewhere: that is
//     accepted as a change at the end of the lockout.
//
// So a transition whose bounce lasts less than d counts once, and two
// accepted changes are always at least d apart: with bounce b and the
// shortest level time h (half the period of a square wave), any d with
// b < d ≤ h counts every pulse exactly once. Rule 3 keeps the level right
// when an edge was lost or a change came during the lockout. A spike
// shorter than d (EMI) is counted as a pulse: filter it in hardware (the
// RC/opto filter of an industrial DI). The caller must feed edges in time
// order and call settle at due() before feeding an edge at or after it.
type debouncer struct {
	d      time.Duration
	stable bool      // accepted level
	raw    bool      // level after the last raw edge
	last   time.Time // time of the last accepted change; zero: none
}

type change struct {
	high bool
	at   time.Time
}

func newDebouncer(d time.Duration, level bool) *debouncer {
	return &debouncer{d: d, stable: level, raw: level}
}

// due reports when a settle is due: the raw level differs from the stable
// one, so at the end of the lockout it becomes the stable level.
func (b *debouncer) due() (time.Time, bool) {
	if b.raw == b.stable {
		return time.Time{}, false
	}
	return b.last.Add(b.d), true
}

// settle accepts the raw level at the end of the lockout. Call only when
// due() is true and the time has come.
func (b *debouncer) settle() change {
	b.stable = b.raw
	b.last = b.last.Add(b.d)
	return change{high: b.stable, at: b.last}
}

// edge feeds a raw edge to level high at time at.
func (b *debouncer) edge(high bool, at time.Time) (change, bool) {
	b.raw = high
	if high == b.stable {
		return change{}, false
	}
	if !b.last.IsZero() && at.Sub(b.last) < b.d {
		return change{}, false
	}
	b.stable, b.last = high, at
	return change{high: high, at: at}, true
}
