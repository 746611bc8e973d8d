package gateway_test

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
	"github.com/townlink/townlink/uplink/wire"
)

// Raw pipeline shape, shared with BenchmarkEndToEnd so the two compare the
// same path: readings per QoS 1 message and messages in flight.
const (
	benchPerMsg = 100
	benchWindow = 100
)

// BenchmarkRawPipeline is the limit BenchmarkEndToEnd is compared with: the
// fastest honest prototype of the same path the same libraries allow, with
// none of Townlink's code. Records already encoded (~180 B) are written to
// Badger 1000 per synced transaction by one writer; a reader iterates each
// committed range and publishes 100 records per QoS 1 message through paho
// with a sliding window of 100 messages to a real mosquitto; a record is
// deleted after its PUBACK, the deletes riding in the writer's next
// transaction (as badgerq's acks do: no sync of their own); a subscriber
// counts the records.
func BenchmarkRawPipeline(b *testing.B) {
	broker := mosquittotest.Start(b, mosquittotest.WithLimits(0, 0))
	const perTxn = 1000

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
	b.ReportMetric(float64(len(rec)), "B/reading")
	prefix := []byte("t/")
	key := func(seq int) []byte { return binary.BigEndian.AppendUint64([]byte("t/"), uint64(seq)) }
	total := (b.N/perTxn + 1) * perTxn

	// Acked ranges wait here for the writer's next transaction.
	var delMu sync.Mutex
	var dels [][2]int
	deleteAcked := func(txn *badger.Txn) error {
		delMu.Lock()
		d := dels
		dels = nil
		delMu.Unlock()
		for _, r := range d {
			for s := r[0]; s < r[1]; s++ {
				if err := txn.Delete(key(s)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	committed := make(chan [2]int, 64)

	b.ResetTimer()
	start := time.Now()
	go func() {
		defer close(committed)
		for first := 0; first < total; first += perTxn {
			txn := db.NewTransaction(true)
			for s := first; s < first+perTxn; s++ {
				if err := txn.Set(key(s), rec); err != nil {
					b.Error(err)
					return
				}
			}
			if err := deleteAcked(txn); err != nil {
				b.Error(err)
				return
			}
			if err := txn.Commit(); err != nil {
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
	win := make([]inflight, 0, benchWindow)
	done := func(f inflight) {
		if !f.tok.WaitTimeout(30*time.Second) || f.tok.Error() != nil {
			b.Fatalf("publish: %v", f.tok.Error())
		}
		delMu.Lock()
		dels = append(dels, [2]int{f.first, f.end})
		delMu.Unlock()
	}
	vals := make([][]byte, 0, perTxn)
	for r := range committed {
		vals = vals[:0]
		err := db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: benchPerMsg, Prefix: prefix})
			defer it.Close()
			for it.Seek(key(r[0])); it.Valid() && len(vals) < r[1]-r[0]; it.Next() {
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					return err
				}
				vals = append(vals, v)
			}
			return nil
		})
		if err != nil || len(vals) != r[1]-r[0] {
			b.Fatalf("read %d..%d: %d values, %v", r[0], r[1], len(vals), err)
		}
		for i := 0; i < len(vals); i += benchPerMsg {
			if len(win) == benchWindow {
				done(win[0])
				win = append(win[:0], win[1:]...)
			}
			p := wire.AppendBatch(nil, "gw-raw", "telemetry", vals[i:i+benchPerMsg])
			win = append(win, inflight{pub.Publish("raw/telemetry", 1, false, p), r[0] + i, r[0] + i + benchPerMsg})
		}
	}
	for _, f := range win {
		done(f)
	}
	if err := db.Update(deleteAcked); err != nil { // the last acks
		b.Fatal(err)
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
