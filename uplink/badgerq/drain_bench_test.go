package badgerq_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/badgerq"
)

// latencyPublisher is a fake fast publisher: it PUBACKs at once and
// measures, for live records, the time from their Append to the publish.
type latencyPublisher struct {
	backlog atomic.Int64
	live    atomic.Int64
	mu      sync.Mutex
	worst   time.Duration
	sum     time.Duration
}

// benchFrame: uint32 count of backlog records, then the append time (unix
// ns) of each live record. Stored records start with 'B' or 'L'+8-byte time.
func benchFrame(recs [][]byte) ([]byte, error) {
	var nb uint32
	out := make([]byte, 4, 4+8*len(recs))
	for _, r := range recs {
		if r[0] == 'L' {
			out = append(out, r[1:9]...)
		} else {
			nb++
		}
	}
	binary.BigEndian.PutUint32(out, nb)
	return out, nil
}

func (p *latencyPublisher) Publish(_ context.Context, _ string, payload []byte) error {
	now := time.Now()
	p.backlog.Add(int64(binary.BigEndian.Uint32(payload)))
	p.mu.Lock()
	for b := payload[4:]; len(b) >= 8; b = b[8:] {
		d := now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(b))))
		p.worst = max(p.worst, d)
		p.sum += d
		p.live.Add(1)
	}
	p.mu.Unlock()
	return nil
}

// BenchmarkDrainBacklogWithLive: a backlog of TOWNLINK_DRAIN_N records
// (default 1M, 200 bytes each) drains through a Forwarder (two lanes, a
// Pacer at an unreachable rate: the drain is limited by Badger) to a fake
// publisher while live records are appended at 100/s. It reports the
// backlog rate and the worst and mean Append→publish latency of live
// records. Run with -benchtime=1x.
func BenchmarkDrainBacklogWithLive(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("TOWNLINK_DRAIN_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		n = v
	}
	rate := 1e9
	if s := os.Getenv("TOWNLINK_DRAIN_RATE"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			b.Fatal(err)
		}
		rate = v
	}
	for range b.N {
		db, err := badgerq.Open(badgerq.Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		q, err := db.Stream("telemetry", badgerq.StreamOptions{})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		batch := make([][]byte, 1000)
		for i := 0; i < n; i += len(batch) {
			for j := range batch {
				r := make([]byte, 200)
				r[0] = 'B'
				batch[j] = r
			}
			if err := q.Append(ctx, batch[:min(len(batch), n-i)]...); err != nil {
				b.Fatal(err)
			}
		}
		pacer, err := uplink.NewPacer(rate, 100)
		if err != nil {
			b.Fatal(err)
		}
		pub := &latencyPublisher{}
		f, err := uplink.NewForwarder(uplink.ForwarderConfig{Queue: q, Publisher: pub, Topic: "t/telemetry", Frame: benchFrame, MaxBatch: 100, Window: 8, Pacer: pacer})
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		start := time.Now()
		rctx, cancel := context.WithCancel(ctx)
		runErr := make(chan error, 1)
		go func() { runErr <- f.Run(rctx) }()
		liveDone := make(chan struct{})
		var liveN int
		go func() { // live appends at 100/s until the backlog is drained
			defer close(liveDone)
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			for pub.backlog.Load() < int64(n) {
				<-t.C
				r := make([]byte, 200)
				r[0] = 'L'
				binary.BigEndian.PutUint64(r[1:], uint64(time.Now().UnixNano()))
				if err := q.Append(ctx, r); err != nil {
					b.Error(err)
					return
				}
				liveN++
			}
		}()
		<-liveDone
		elapsed := time.Since(start)
		for deadline := time.Now().Add(30 * time.Second); pub.live.Load() < int64(liveN) && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		cancel()
		if err := <-runErr; !errors.Is(err, context.Canceled) {
			b.Fatal(err)
		}
		b.StopTimer()
		pub.mu.Lock()
		worst, mean := pub.worst, pub.sum/time.Duration(max(1, pub.live.Load()))
		pub.mu.Unlock()
		b.ReportMetric(float64(n)/elapsed.Seconds(), "backlog_rec/s")
		b.ReportMetric(float64(worst.Microseconds())/1000, "live_max_ms")
		b.ReportMetric(float64(mean.Microseconds())/1000, "live_mean_ms")
		b.ReportMetric(float64(pub.live.Load()), "live_recs")
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
