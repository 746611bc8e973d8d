package modbussim

import (
	"testing"
	"time"
)

// A creep starts at From, ends at To, and its noise stays within ±Noise.
func TestCreep(t *testing.T) {
	u := NewUnit(1)
	anim := Creep{Register: 3, From: 80, To: 120, Over: time.Minute, Noise: 0.02, Scale: 0.1, Seed: 7}.Animation()
	t0 := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	for i := 0; i <= 120; i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		anim(now, u)
		want := 80 + 40*min(float64(i)/60, 1)
		raw, _ := u.Holding(3)
		got := float64(raw) * 0.1
		if got < want*0.98-0.1 || got > want*1.02+0.1 {
			t.Fatalf("at %ds: %.1f, want %.1f ±2 %%", i, got, want)
		}
	}
}
