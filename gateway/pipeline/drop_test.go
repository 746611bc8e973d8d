package pipeline_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/pipeline"
	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/badgerq"
)

// A reading the store will not keep is never lost silently: Emit fails
// and the drop is counted by the queue's reason, for the status.
func TestAReadingThatCannotBeQueuedIsCountedByReason(t *testing.T) {
	db, err := badgerq.Open(badgerq.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A stream with a quota and no gap function refuses once it is full.
	q, err := db.Stream("telemetry", badgerq.StreamOptions{Quota: badgerq.MinQuota})
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline.Pipeline{
		Gateway:    "gw-1",
		Devices:    map[string]pipeline.Device{"m1": {Kind: "power"}},
		Queues:     map[drivers.Class]uplink.Queue{drivers.Telemetry: q},
		DropReason: badgerq.Reason,
	}
	r := drivers.Reading{Device: "m1", Class: drivers.Telemetry, Time: time.UnixMilli(1_700_000_000_000),
		Values: map[string]drivers.Value{"note": drivers.Text(string(make([]byte, 600)))}}
	var failed int
	for i := 0; i < 20; i++ {
		if err := p.Emit(context.Background(), []drivers.Reading{r, r}); err != nil {
			if !errors.Is(err, badgerq.ErrQuota) {
				t.Fatalf("emit %d: %v, want a quota error", i, err)
			}
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("the quota never refused an append")
	}
	drops := p.Dropped()
	if got := drops["readings_quota"]; got != uint64(2*failed) {
		t.Errorf("drops %v: readings_quota = %d, want %d", drops, got, 2*failed)
	}
	if _, rejected := p.Counts(); rejected != uint64(2*failed) {
		t.Errorf("rejected %d, want %d", rejected, 2*failed)
	}
}
