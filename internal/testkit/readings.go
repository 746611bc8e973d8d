package testkit

import (
	"testing"

	"github.com/townlink/townlink/drivers"
)

// WantValues checks that got has exactly the points of want, each Equal
// (same number and exponent, same kind) to the wanted value.
func WantValues(t testing.TB, got, want map[string]drivers.Value) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s missing", k)
			continue
		}
		if !g.Equal(w) {
			t.Errorf("%s = %s (%v), want %s", k, g, g.Kind(), w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected point %s = %s", k, g)
		}
	}
}

// OnlyReading returns the one reading of rs; any other number fails the
// test.
func OnlyReading(t testing.TB, rs []drivers.Reading) drivers.Reading {
	t.Helper()
	if len(rs) != 1 {
		t.Fatalf("%d readings, want 1: %+v", len(rs), rs)
	}
	return rs[0]
}
