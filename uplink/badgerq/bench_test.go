package badgerq

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func payload200(i int) []byte {
	b := make([]byte, 200)
	copy(b, fmt.Sprintf("reading-%012d", i))
	return b
}

// BenchmarkRawBadgerGroupCommit is the machine's limit: plain Badger with
// the same options, 1000 entries of 200 bytes per synced transaction.
func BenchmarkRawBadgerGroupCommit(b *testing.B) {
	o := Options{Dir: b.TempDir()}.withDefaults()
	bdb, err := badger.Open(o.badgerOptions(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	defer bdb.Close()
	val := payload200(0)
	b.SetBytes(200)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; {
		txn := bdb.NewTransaction(true)
		for j := 0; j < 1000 && i < b.N; j, i = j+1, i+1 {
			if err := txn.Set(entryKey(nil, []byte("e/raw/"), uint64(i+1)), val); err != nil {
				b.Fatal(err)
			}
		}
		if err := txn.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
}

// BenchmarkQueueAppend: N concurrent appenders, one entry per Append call,
// b.N entries in all; the committer batches them.
func BenchmarkQueueAppend(b *testing.B) {
	for _, appenders := range []int{1, 16, 256, 1024} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			db, err := Open(Options{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			q, err := db.Stream("telemetry", StreamOptions{})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			val := payload200(0)
			var next atomic.Int64
			b.SetBytes(200)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range appenders {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if err := q.Append(ctx, val); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
			if s := q.Stats(); s.LastSeq != uint64(b.N) {
				b.Fatalf("LastSeq %d, want %d", s.LastSeq, b.N)
			}
		})
	}
}

// BenchmarkDrain: peek (500 at a time) and ack a 100k backlog, the way the
// forwarder drains after an outage.
func BenchmarkDrain(b *testing.B) {
	const backlog = 100_000
	db, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	q, err := db.Stream("telemetry", StreamOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	batch := make([][]byte, 1000)
	for i := range batch {
		batch[i] = payload200(i)
	}
	var after uint64
	var elapsed time.Duration
	b.SetBytes(200 * backlog)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for i := 0; i < backlog; i += len(batch) {
			if err := q.Append(ctx, batch...); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		for n := 0; n < backlog; {
			es, err := q.Peek(ctx, after, 500)
			if err != nil {
				b.Fatal(err)
			}
			seqs := make([]uint64, len(es))
			for i, e := range es {
				seqs[i] = e.Seq
			}
			if err := q.Ack(seqs...); err != nil {
				b.Fatal(err)
			}
			after = seqs[len(seqs)-1]
			n += len(es)
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(b.N*backlog)/elapsed.Seconds(), "entries/s")
	if s := q.Stats(); s.Backlog != 0 {
		b.Fatalf("backlog %d after draining", s.Backlog)
	}
}
