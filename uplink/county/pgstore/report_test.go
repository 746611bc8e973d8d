package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/townlink/townlink/uplink/county"
	"github.com/townlink/townlink/uplink/county/pgstore"
	"github.com/townlink/townlink/uplink/county/pgstore/pgtest"
	"github.com/townlink/townlink/uplink/wire"
)

func TestAccountAndSummary(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	s, err := pgstore.Open(ctx, srv.DSN, "w1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ts := time.Now().Add(-time.Second)
	recs := func(seqs ...uint64) []wire.Record {
		var out []wire.Record
		for _, q := range seqs {
			out = append(out, wire.Record{Seq: q, Dev: "m", Kind: wire.KindPower, TS: ts.UnixMilli(), TSrc: wire.TSrcGateway,
				Vals: map[string]wire.Value{"energy_kwh": wire.Dec(int64(q), -1)}})
		}
		return out
	}
	gap := wire.GapRecord("gw-1", 5, 6, "quota", ts.UnixMilli())
	gap.Seq = 7
	b := func(rs ...wire.Record) county.Batch {
		return county.Batch{County: "320583", Township: "320583104", Batch: &wire.Batch{V: 1, GW: "gw-1", Stream: "telemetry", Recs: rs}, Received: time.Now()}
	}
	res, err := s.Commit(ctx, &county.Commit{Batches: []county.Batch{b(recs(1, 2, 3)...), b(gap), b(recs(1)...)}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 4 || res.Duplicates != 1 || len(res.Progress) != 1 || res.Progress[0].Upto != 3 {
		t.Fatalf("%+v", res)
	}
	a, err := s.Account(ctx, "gw-1", "telemetry", 8)
	if err != nil {
		t.Fatal(err)
	}
	if a.Rows != 4 || a.Covered != 2 || len(a.Missing) != 2 || a.Missing[0] != 4 || a.Missing[1] != 8 {
		t.Fatalf("%+v", a)
	}
	sum, err := s.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Rows["telemetry"] != 4 || sum.Duplicates != 1 || sum.Gaps != 1 || sum.Covered != 2 || sum.Behind != 1 || sum.Gateways != 1 {
		t.Fatalf("%+v\n%s", sum, sum)
	}
	q, n, err := s.Latency(ctx, ts.Add(-time.Minute), ts.Add(time.Minute), 0.5, 0.99)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 || q[0] <= 0 || q[1] < q[0] {
		t.Fatalf("latency %v over %d", q, n)
	}
}
