package badgerq_test

import (
	"testing"
	"time"

	"github.com/townlink/townlink/uplink/badgerq"
)

func within(t *testing.T, what string, got, from, to time.Time) {
	t.Helper()
	if got.Before(from) || got.After(to) {
		t.Fatalf("%s: Oldest = %s, want within [%s, %s]", what, got.Format(time.StampMicro), from.Format(time.StampMicro), to.Format(time.StampMicro))
	}
}

// Oldest is the append time of the oldest unacked entry: it moves on as
// entries are acked, is zero when nothing waits, and counts from Open for
// entries recovered from disk.
func TestStatsOldestUnsent(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	db := openDB(t, dir)
	q, err := db.Stream("telemetry", badgerq.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st := q.Stats(); !st.Oldest.IsZero() {
		t.Fatalf("empty stream: Oldest = %s", st.Oldest)
	}
	b1 := time.Now()
	if err := q.Append(ctx, []byte("a"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	a1 := time.Now()
	within(t, "first append", q.Stats().Oldest, b1, a1)

	// Marks are a second apart: wait past that, so the second append has
	// its own.
	for time.Since(b1) <= 1100*time.Millisecond {
		time.Sleep(50 * time.Millisecond)
	}
	b2 := time.Now()
	if err := q.Append(ctx, []byte("c")); err != nil {
		t.Fatal(err)
	}
	a2 := time.Now()
	within(t, "two appends", q.Stats().Oldest, b1, a1)
	if err := q.Ack(1); err != nil {
		t.Fatal(err)
	}
	within(t, "first of the first append acked", q.Stats().Oldest, b1, a1)
	if err := q.Ack(2); err != nil {
		t.Fatal(err)
	}
	within(t, "first append acked", q.Stats().Oldest, b2, a2)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	b3 := time.Now()
	db = openDB(t, dir)
	defer db.Close()
	q, err = db.Stream("telemetry", badgerq.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a3 := time.Now()
	if st := q.Stats(); st.Backlog != 1 {
		t.Fatalf("reopened backlog = %d, want 1", st.Backlog)
	}
	within(t, "recovered entry", q.Stats().Oldest, b3, a3)
	if err := q.Ack(3); err != nil {
		t.Fatal(err)
	}
	if st := q.Stats(); !st.Oldest.IsZero() || st.Backlog != 0 {
		t.Fatalf("drained stream: %+v, want no Oldest", st)
	}
}
