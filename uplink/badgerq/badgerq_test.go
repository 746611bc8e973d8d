package badgerq_test

import (
	"context"
	"testing"
	"time"

	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/badgerq"
	"github.com/townlink/townlink/uplink/queuetest"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openDB(t testing.TB, dir string) *badgerq.DB {
	t.Helper()
	db, err := badgerq.Open(badgerq.Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return db
}

func TestConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, dir string) (uplink.Queue, func()) {
		db := openDB(t, dir)
		q, err := db.Stream("telemetry", badgerq.StreamOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return q, func() {
			if err := db.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	})
}
