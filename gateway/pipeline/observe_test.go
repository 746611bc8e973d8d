package pipeline_test

import (
	"context"
	"errors"
	"testing"

	"github.com/townlink/townlink/drivers"
)

// Observe sees the readings of a successful Emit, after they are queued,
// and never those of a failed one.
func TestObserveAfterQueued(t *testing.T) {
	p, qs := newPipeline()
	var seen []string
	p.Observe = func(_ context.Context, rs []drivers.Reading) {
		for _, r := range rs {
			seen = append(seen, r.Device)
		}
		if len(qs[drivers.Telemetry].got) == 0 {
			t.Errorf("observed before queued")
		}
	}
	rs := []drivers.Reading{{Device: "m1", Values: map[string]drivers.Value{"energy_kwh": drivers.Dec(1, 0)}}}
	if err := p.Emit(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	qs[drivers.Telemetry].err = errors.New("disk full")
	if err := p.Emit(t.Context(), rs); err == nil {
		t.Fatal("emit into a failing queue succeeded")
	}
	if len(seen) != 1 || seen[0] != "m1" {
		t.Errorf("observed %v, want [m1] once", seen)
	}
}
