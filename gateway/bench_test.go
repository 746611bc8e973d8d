package gateway_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/pipeline"
	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/badgerq"
	"github.com/townlink/townlink/uplink/mqttpub"
	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
	"github.com/townlink/townlink/uplink/wire"
)

// countRecs counts the records of a batch without decoding them, so the
// benchmark's subscriber does not steal the CPU the gateway is measured on.
func countRecs(payload []byte) int {
	var b struct {
		Recs []cbor.RawMessage `cbor:"recs"`
	}
	if err := cbor.Unmarshal(payload, &b); err != nil {
		return 0
	}
	return len(b.Recs)
}

// BenchmarkEndToEnd is Townlink's durable path: readings from 1024 devices
// → pipeline (wire records) → Badger queue (synced group commit) →
// forwarder (100 records per message, a window of 100 messages, as
// BenchmarkRawPipeline) → paho QoS 1 → a real mosquitto → a subscriber. It
// reports readings/s counted at the subscriber; compare with
// BenchmarkRawPipeline, the same path without Townlink's code, from the same
// `make bench` run.
func BenchmarkEndToEnd(b *testing.B) { endToEnd(b, badgerq.LowMemory()) }

// BenchmarkEndToEndServerProfile is BenchmarkEndToEnd with the store sized
// as the raw pipeline's Badger is (store.profile: default in the config,
// for a gateway with memory to spare): the same path on the same Badger
// configuration as BenchmarkRawPipeline.
func BenchmarkEndToEndServerProfile(b *testing.B) { endToEnd(b, badgerq.BadgerDefault()) }

func endToEnd(b *testing.B, profile badgerq.Profile) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, q, got := benchUplink(b, profile)

	const devices = 1024
	devs := map[string]pipeline.Device{}
	for i := range devices {
		devs[fmt.Sprintf("meter-%02d", i)] = pipeline.Device{Kind: "power", Grid: "320583104001-02"}
	}
	pipe := &pipeline.Pipeline{Gateway: "gw-bench-01", Devices: devs,
		Queues: map[drivers.Class]uplink.Queue{drivers.Telemetry: q}, ClockSynced: func() bool { return true }}

	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	per := b.N/devices + 1
	total := int64(per * devices)
	for d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("meter-%02d", d)
			for i := range per {
				r := drivers.Reading{Device: id, Time: time.Now(), Values: map[string]drivers.Value{
					"energy_kwh": drivers.Dec(int64(12345678+i), -2), "voltage_a_v": drivers.Dec(2297, -1),
					"current_a_a": drivers.Dec(-1234, -3), "power_kw": drivers.Dec(12345, -4)}}
				if err := pipe.Emit(ctx, []drivers.Reading{r}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	accepted := time.Since(start)
	deadline := time.Now().Add(5 * time.Minute)
	for got.Load() < total {
		if time.Now().After(deadline) {
			b.Fatalf("subscriber got %d of %d records", got.Load(), total)
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(total)/elapsed.Seconds(), "readings/s")
	b.ReportMetric(float64(total)/accepted.Seconds(), "accepted/s")
}

// benchUplink is the durable path the end-to-end benchmarks share: a real
// mosquitto with a subscriber counting the records it receives, a synced
// Badger queue (telemetry, sealed as the gateway seals it) on profile, and
// a forwarder (benchPerMsg records per message, a window of benchWindow)
// publishing it through paho; all stopped when b ends.
func benchUplink(b *testing.B, profile badgerq.Profile) (*badgerq.DB, *badgerq.Queue, *atomic.Int64) {
	b.Helper()
	broker := mosquittotest.Start(b, mosquittotest.WithLimits(0, 0))
	ctx, cancel := context.WithCancel(context.Background())
	var got atomic.Int64
	sub, err := mqttpub.New(mqttpub.Options{Brokers: []string{broker.URL}, ClientID: "bench-platform"})
	if err != nil {
		b.Fatal(err)
	}
	sub.Start(ctx)
	if err := sub.Subscribe(ctx, "townlink/v1/#", func(_ string, p []byte) { got.Add(int64(countRecs(p))) }); err != nil {
		b.Fatal(err)
	}
	db, err := badgerq.Open(badgerq.Options{Dir: b.TempDir(), Profile: profile})
	if err != nil {
		b.Fatal(err)
	}
	q, err := db.Stream(wire.StreamTelemetry, badgerq.StreamOptions{Seal: wire.NewSealer(wire.StreamTelemetry, nil).Seal})
	if err != nil {
		b.Fatal(err)
	}
	pub, err := mqttpub.New(mqttpub.Options{Brokers: []string{broker.URL}, ClientID: "gw-bench-01"})
	if err != nil {
		b.Fatal(err)
	}
	pub.Start(ctx)
	for !pub.Connected() || !sub.Connected() {
		time.Sleep(10 * time.Millisecond)
	}
	topic := wire.Topic("320583", "320583104", "gw-bench-01", wire.StreamTelemetry)
	fwd, err := uplink.NewForwarder(uplink.ForwarderConfig{Queue: q, Publisher: pub, Topic: topic, MaxBatch: benchPerMsg, Window: benchWindow,
		Frame: wire.Framer("gw-bench-01", wire.StreamTelemetry)})
	if err != nil {
		b.Fatal(err)
	}
	fctx, fcancel := context.WithCancel(ctx)
	fdone := make(chan struct{})
	go func() { fwd.Run(fctx); close(fdone) }()
	b.Cleanup(func() {
		fcancel()
		<-fdone
		pub.Close()
		db.Close()
		sub.Close()
		cancel()
	})
	return db, q, &got
}
