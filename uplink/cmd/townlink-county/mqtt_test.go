package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/townlink/townlink/uplink/county/pgstore/pgtest"
	"github.com/townlink/townlink/uplink/mqttpub"
	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
	"github.com/townlink/townlink/uplink/wire"
)

// The alternative path: two workers sharing mosquitto's $share
// subscription store a gateway's batches (each seq once, although every
// batch is sent twice) and acknowledge them at QoS 1 on its ack topic.
func TestIngestFromSharedSubscription(t *testing.T) {
	b := mosquittotest.Start(t)
	pg := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	errs := make(chan error, 2)
	for w := range 2 {
		go func() {
			errs <- run(ctx, []string{"ingest", "-source", "mqtt", "-mqtt", b.URL, "-pg", pg.DSN, "-worker", fmt.Sprintf("w%d", w), "-log", "error"}, io.Discard, io.Discard)
		}()
	}
	gw, err := mqttpub.New(mqttpub.Options{Brokers: []string{b.URL}, ClientID: "gw-1"})
	if err != nil {
		t.Fatal(err)
	}
	gw.Start(ctx)
	defer gw.Close()
	acked := make(chan uint64, 100)
	if err := gw.Subscribe(ctx, wire.Topic("320583", "320583104", "gw-1", wire.StreamAck), func(_ string, p []byte) {
		if a, err := wire.DecodeAck(p); err == nil {
			acked <- a.Upto
		}
	}); err != nil {
		t.Fatal(err)
	}
	for !gw.Connected() {
		time.Sleep(20 * time.Millisecond)
	}
	conn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// The workers subscribe once their store is open; wait for the schema.
	for {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT to_regclass('telemetry') IS NOT NULL").Scan(&ok); err == nil && ok {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	const n = 50
	for seq := uint64(1); seq <= n; seq++ {
		r := wire.Record{Seq: seq, Dev: "m1", Kind: wire.KindWater, TS: time.Now().UnixMilli(), TSrc: wire.TSrcGateway,
			Vals: map[string]wire.Value{"flow_m3": wire.Dec(int64(seq)*125, -3)}}
		p, err := wire.Encode(&wire.Batch{V: 1, GW: "gw-1", Stream: wire.StreamTelemetry, Recs: []wire.Record{r}})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := gw.Publish(ctx, wire.Topic("320583", "320583104", "gw-1", wire.StreamTelemetry), p); err != nil {
				t.Fatal(err)
			}
		}
	}
	for up := uint64(0); up < n; {
		select {
		case u := <-acked:
			up = max(up, u)
		case <-ctx.Done():
			t.Fatalf("acknowledged up to %d of %d", up, n)
		}
	}
	var rows, workers int
	var flow string
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM telemetry), (SELECT count(*) FROM ingest_counters WHERE inserted > 0),
		(SELECT num::text FROM telemetry_points WHERE seq = 7 AND name = 'flow_m3')`).Scan(&rows, &workers, &flow); err != nil {
		t.Fatal(err)
	}
	if rows != n || flow != "0.875" {
		t.Fatalf("%d rows (want %d), flow_m3 of seq 7 %q", rows, n, flow)
	}
	if workers != 2 {
		t.Logf("only %d worker stored records (the broker chose)", workers)
	}
	cancel()
	for range 2 {
		if err := <-errs; err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("worker: %v", err)
		}
	}
}
