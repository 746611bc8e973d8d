package gateway_test

import (
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
	"github.com/townlink/townlink/uplink/wire"
)

// BenchmarkRawPipeline is the limit BenchmarkEndToEnd is compared with: a
// plain prototype of the same path with none of Townlink's code — records
// already encoded, written to Badger (synced) 1000 per transaction, read
// back, 100 per QoS 1 message through paho with a sliding window of 8 to a
// real mosquitto, deleted after PUBACK, counted at a subscriber.
func BenchmarkRawPipeline(b *testing.B) {
	broker := mosquittotest.Start(b, mosquittotest.WithLimits(0, 0))
	const perTxn, perMsg, window = 1000, 100, 8

	var got atomic.Int64
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID("raw-sub").SetOrderMatters(false))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe("raw/#", 1, func(_ mqtt.Client, m mqtt.Message) { got.Add(int64(countRecs(m.Payload()))) }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID("raw-pub").SetOrderMatters(false).SetWriteTimeout(30 * time.Second))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer pub.Disconnect(100)

	db, err := badger.Open(badger.DefaultOptions(b.TempDir()).WithSyncWrites(true).WithLogger(nil))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()

	rec, err := wire.EncodeRecord(&wire.Record{Seq: 1, Dev: "meter-01", Kind: "power", TS: time.Now().UnixMilli(), TSrc: "gateway",
		Grid: "320583104001-02", Vals: map[string]wire.Value{"energy_kwh": wire.Dec(12345678, -2), "voltage_a_v": wire.Dec(2297, -1),
			"current_a_a": wire.Dec(-1234, -3), "power_kw": wire.Dec(12345, -4)}})
	if err != nil {
		b.Fatal(err)
	}
	key := func(seq int) []byte { return binary.BigEndian.AppendUint64([]byte("t/"), uint64(seq)) }
	total := (b.N/perTxn + 1) * perTxn
	committed := make(chan [2]int, 64)

	b.ResetTimer()
	start := time.Now()
	go func() {
		defer close(committed)
		for first := 0; first < total; first += perTxn {
			wb := db.NewTransaction(true)
			for s := first; s < first+perTxn; s++ {
				if err := wb.Set(key(s), rec); err != nil {
					b.Error(err)
					return
				}
			}
			if err := wb.Commit(); err != nil {
				b.Error(err)
				return
			}
			committed <- [2]int{first, first + perTxn}
		}
	}()
	type inflight struct {
		tok        mqtt.Token
		first, end int
	}
	var win []inflight
	drop := func(f inflight) {
		if !f.tok.WaitTimeout(30*time.Second) || f.tok.Error() != nil {
			b.Fatalf("publish: %v", f.tok.Error())
		}
		txn := db.NewTransaction(true)
		for s := f.first; s < f.end; s++ {
			txn.Delete(key(s))
		}
		txn.Commit()
	}
	for r := range committed {
		var vals [][]byte
		db.View(func(txn *badger.Txn) error {
			for s := r[0]; s < r[1]; s++ {
				it, err := txn.Get(key(s))
				if err != nil {
					return err
				}
				v, _ := it.ValueCopy(nil)
				vals = append(vals, v)
			}
			return nil
		})
		for i := 0; i < len(vals); i += perMsg {
			if len(win) == window {
				drop(win[0])
				win = win[1:]
			}
			p := wire.AppendBatch(nil, "gw-raw", "telemetry", vals[i:i+perMsg])
			win = append(win, inflight{pub.Publish("raw/telemetry", 1, false, p), r[0] + i, r[0] + i + perMsg})
		}
	}
	for _, f := range win {
		drop(f)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for got.Load() < int64(total) {
		if time.Now().After(deadline) {
			b.Fatalf("subscriber got %d of %d", got.Load(), total)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "readings/s")
}
