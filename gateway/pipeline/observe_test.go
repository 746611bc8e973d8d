package pipeline_test

import (
	"context"
	"testing"

	"github.com/townlink/townlink/drivers"
)

// Observe sees readings only once they are queued: a reading the queue
// refused never shows on the local page or reaches the rules as if it had
// been kept.
func TestObserveSeesOnlyQueuedReadings(t *testing.T) {
	p, qs, db := newPipeline(t)
	var seen []drivers.Reading
	p.Observe = func(_ context.Context, rs []drivers.Reading) {
		if len(qs.got(t, drivers.Telemetry)) == 0 {
			t.Errorf("observed before queued")
		}
		seen = append(seen, rs...)
	}
	r := drivers.Reading{Device: "m1", Values: map[string]drivers.Value{"p_kw": drivers.Int(3)}}
	if err := p.Emit(context.Background(), []drivers.Reading{r}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0].Device != "m1" {
		t.Fatalf("observed %+v", seen)
	}
	db.Close() // the store goes away: appends fail
	if err := p.Emit(context.Background(), []drivers.Reading{r}); err == nil {
		t.Fatal("a refused append was accepted")
	}
	if len(seen) != 1 {
		t.Fatalf("a refused reading was observed: %+v", seen)
	}
}
