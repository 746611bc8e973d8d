package gateway_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/townlink/townlink/uplink/badgerq"
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
	db, err := badger.Open(badger.DefaultOptions(b.TempDir()).WithSyncWrites(true).WithLogger(nil))
	if err != nil {
		b.Fatal(err)
	}
	rawPipeline(b, &rawStore{db: db, maxDels: -1})
}

// BenchmarkRawPipelineQueueProfile is BenchmarkRawPipeline on Badger
// configured exactly as the queue configures it (badgerq's default
// LowMemory profile: 4 MB memtables, kept within the gateway's memory
// goal) instead of Badger's defaults (64 MB memtables). The smaller
// memtables hold fewer deletes per transaction, so at most rawPerTxn
// ride in each write, as in the queue.
func BenchmarkRawPipelineQueueProfile(b *testing.B) {
	db, err := badger.Open(badgerq.Options{Dir: b.TempDir()}.Badger())
	if err != nil {
		b.Fatal(err)
	}
	rawPipeline(b, &rawStore{db: db, maxDels: rawPerTxn})
}

// BenchmarkRawPipelineSegments is BenchmarkRawPipeline storing, as the
// queue now does, the records of a transaction as values of 100 records
// (one per QoS 1 message) instead of one key per record: the raw path
// with the queue's storage layout, on Badger's default options.
func BenchmarkRawPipelineSegments(b *testing.B) {
	db, err := badger.Open(badger.DefaultOptions(b.TempDir()).WithSyncWrites(true).WithLogger(nil))
	if err != nil {
		b.Fatal(err)
	}
	rawPipeline(b, &rawStore{db: db, maxDels: -1, seg: benchPerMsg})
}

// BenchmarkRawPipelineSegmentsQueueProfile is BenchmarkRawPipelineSegments
// on Badger configured as the queue configures it (LowMemory profile), the
// raw path with the queue's storage layout and options: the limit for
// BenchmarkEndToEnd with nothing but Townlink's code between them.
func BenchmarkRawPipelineSegmentsQueueProfile(b *testing.B) {
	db, err := badger.Open(badgerq.Options{Dir: b.TempDir()}.Badger())
	if err != nil {
		b.Fatal(err)
	}
	rawPipeline(b, &rawStore{db: db, maxDels: rawPerTxn, seg: benchPerMsg})
}

func rawPipeline(b *testing.B, st *rawStore) {
	b.Cleanup(func() { st.db.Close() })
	broker := mosquittotest.Start(b, mosquittotest.WithLimits(0, 0))
	got, pub := rawClients(b, broker.URL)
	rec, err := wire.EncodeRecord(&wire.Record{Seq: 1, Dev: "meter-01", Kind: "power", TS: time.Now().UnixMilli(), TSrc: "gateway",
		Grid: "320583104001-02", Vals: map[string]wire.Value{"energy_kwh": wire.Dec(12345678, -2), "voltage_a_v": wire.Dec(2297, -1),
			"current_a_a": wire.Dec(-1234, -3), "power_kw": wire.Dec(12345, -4)}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(rec)), "B/reading")
	total := (b.N/rawPerTxn + 1) * rawPerTxn
	committed := make(chan [2]int, 64)

	b.ResetTimer()
	start := time.Now()
	go func() {
		defer close(committed)
		for first := 0; first < total; first += rawPerTxn {
			if err := st.write(first, rec); err != nil {
				b.Error(err)
				return
			}
			committed <- [2]int{first, first + rawPerTxn}
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
		st.ack(f.first, f.end)
	}
	for r := range committed {
		vals, err := st.read(r[0], r[1])
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < len(vals); i += benchPerMsg {
			if len(win) == benchWindow {
				done(win[0])
				win = append(win[:0], win[1:]...)
			}
			p := wire.AppendBatch(make([]byte, 0, 64+benchPerMsg*len(rec)), "gw-raw", "telemetry", vals[i:i+benchPerMsg])
			win = append(win, inflight{pub.Publish("raw/telemetry", 1, false, p), r[0] + i, r[0] + i + benchPerMsg})
		}
	}
	for _, f := range win {
		done(f)
	}
	for st.acked() > 0 { // the last acks
		if err := st.db.Update(st.deleteAcked); err != nil {
			b.Fatal(err)
		}
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

// rawClients connects a plain paho subscriber, which counts the records it
// receives, and a plain paho publisher.
func rawClients(b *testing.B, url string) (*atomic.Int64, mqtt.Client) {
	got := new(atomic.Int64)
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("raw-sub").SetOrderMatters(false))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	b.Cleanup(func() { sub.Disconnect(100) })
	if tok := sub.Subscribe("raw/#", 1, func(_ mqtt.Client, m mqtt.Message) { got.Add(int64(countRecs(m.Payload()))) }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("raw-pub").SetOrderMatters(false).SetWriteTimeout(30 * time.Second))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	b.Cleanup(func() { pub.Disconnect(100) })
	return got, pub
}

const rawPerTxn = 1000 // entries per synced Badger transaction

// rawStore is plain Badger, synced: records under "t/"+seq; acked ranges
// wait for the next write transaction to delete them (at most maxDels
// records per transaction; negative: all).
type rawStore struct {
	db      *badger.DB
	maxDels int
	seg     int // > 1: records stored seg to a value, keyed by the first (acks cover whole values)
	mu      sync.Mutex
	dels    [][2]int
}

func rawKey(seq int) []byte { return binary.BigEndian.AppendUint64([]byte("t/"), uint64(seq)) }

// write commits rawPerTxn copies of rec from seq first, with the deletes of
// everything acked since the last write, in one synced transaction.
func (s *rawStore) write(first int, rec []byte) error {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	if s.seg > 1 {
		v := bytes.Repeat(rec, s.seg) // records of one length: split by it
		for seq := first; seq < first+rawPerTxn; seq += s.seg {
			if err := txn.Set(rawKey(seq), v); err != nil {
				return err
			}
		}
	}
	for seq := first; seq < first+rawPerTxn && s.seg <= 1; seq++ {
		if err := txn.Set(rawKey(seq), rec); err != nil {
			return err
		}
	}
	if err := s.deleteAcked(txn); err != nil {
		return err
	}
	return txn.Commit()
}

func (s *rawStore) ack(first, end int) {
	s.mu.Lock()
	s.dels = append(s.dels, [2]int{first, end})
	s.mu.Unlock()
}

// acked is the number of acked ranges not yet deleted.
func (s *rawStore) acked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.dels)
}

func (s *rawStore) deleteAcked(txn *badger.Txn) error {
	s.mu.Lock()
	d := s.dels
	s.dels = nil
	if s.maxDels >= 0 {
		n, k := 0, 0
		for k < len(d) && (k == 0 || n+d[k][1]-d[k][0] <= s.maxDels) {
			n += d[k][1] - d[k][0]
			k++
		}
		d, s.dels = d[:k], d[k:]
	}
	s.mu.Unlock()
	step := max(s.seg, 1)
	for _, r := range d {
		for seq := r[0]; seq < r[1]; seq += step {
			if err := txn.Delete(rawKey(seq)); err != nil {
				return err
			}
		}
	}
	return nil
}

// read returns the values of seqs first..end-1 through one iterator.
func (s *rawStore) read(first, end int) ([][]byte, error) {
	vals := make([][]byte, 0, end-first)
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: benchPerMsg, Prefix: []byte("t/")})
		defer it.Close()
		for it.Seek(rawKey(first)); it.Valid() && len(vals) < end-first; it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if s.seg <= 1 {
				vals = append(vals, v)
				continue
			}
			n := len(v) / s.seg
			for i := 0; i < s.seg; i++ {
				vals = append(vals, v[i*n:(i+1)*n:(i+1)*n])
			}
		}
		return nil
	})
	if err == nil && len(vals) != end-first {
		err = fmt.Errorf("read %d..%d: %d values", first, end, len(vals))
	}
	return vals, err
}
