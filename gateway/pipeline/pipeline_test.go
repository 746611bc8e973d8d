package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/pipeline"
	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/badgerq"
	"github.com/townlink/townlink/uplink/wire"
)

// queues are real Badger queues, one per stream, in a temporary directory.
type queues map[drivers.Class]*badgerq.Queue

// got returns what was queued on the stream of class c.
func (qs queues) got(t testing.TB, c drivers.Class) [][]byte {
	t.Helper()
	if qs[c].Stats().Backlog == 0 {
		return nil // Peek waits for an entry
	}
	es, err := qs[c].Peek(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, len(es))
	for i, e := range es {
		out[i] = e.Data
	}
	return out
}

func newPipeline(t testing.TB) (*pipeline.Pipeline, queues, *badgerq.DB) {
	t.Helper()
	db, err := badgerq.Open(badgerq.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p := &pipeline.Pipeline{
		Gateway:     "gw-1",
		Devices:     map[string]pipeline.Device{"m1": {Kind: "power", Grid: "320583104001-02"}, "door": {Kind: "gpio"}},
		Queues:      map[drivers.Class]uplink.Queue{},
		ClockSynced: func() bool { return true },
		DropReason:  badgerq.Reason,
	}
	qs := queues{}
	for _, c := range []drivers.Class{drivers.Telemetry, drivers.Event, drivers.Alarm, drivers.Evidence} {
		q, err := db.Stream(pipeline.StreamOf(c), badgerq.StreamOptions{})
		if err != nil {
			t.Fatal(err)
		}
		qs[c], p.Queues[c] = q, q
	}
	return p, qs, db
}

func TestReadingsBecomeExactRecordsOnTheirStream(t *testing.T) {
	p, qs, _ := newPipeline(t)
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	err := p.Emit(context.Background(), []drivers.Reading{
		{Device: "m1", Time: at, Values: map[string]drivers.Value{
			"energy_kwh": drivers.Dec(12345678, -2), "pf": drivers.Dec(-987, -3), "n": drivers.Int(7),
			"f": drivers.Float(1.5), "ok": drivers.Bool(true), "valve": drivers.Text("open")}},
		{Device: "door", Class: drivers.Alarm, Time: at, DeviceTime: true, Values: map[string]drivers.Value{"state": drivers.Bool(true)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tel, al, ev := qs.got(t, drivers.Telemetry), qs.got(t, drivers.Alarm), qs.got(t, drivers.Event)
	if len(tel) != 1 || len(al) != 1 || len(ev) != 0 {
		t.Fatalf("queued telemetry %d alarms %d events %d", len(tel), len(al), len(ev))
	}
	r, err := wire.DecodeRecord(tel[0])
	if err != nil {
		t.Fatal(err)
	}
	if r.Dev != "m1" || r.Kind != "power" || r.Grid != "320583104001-02" || r.TS != at.UnixMilli() || r.TSrc != "gateway" {
		t.Errorf("record header = %+v", r)
	}
	want := map[string]wire.Value{"energy_kwh": wire.Dec(12345678, -2), "pf": wire.Dec(-987, -3), "n": wire.Int(7),
		"f": wire.Float(1.5), "ok": wire.Bool(true), "valve": wire.Text("open")}
	for k, v := range want {
		if !r.Vals[k].Equal(v) {
			t.Errorf("%s = %s, want %s", k, r.Vals[k], v)
		}
	}
	if got := r.Vals["energy_kwh"].String(); got != "123456.78" {
		t.Errorf("energy_kwh = %s", got)
	}
	a, _ := wire.DecodeRecord(al[0])
	if a.TSrc != "device" || a.Kind != "gpio" {
		t.Errorf("alarm record = %+v", a)
	}
	if acc, rej := p.Counts(); acc != 2 || rej != 0 {
		t.Errorf("counts = %d, %d", acc, rej)
	}
}

// Readings of several classes in one call reach each stream in the order
// given, one Append per stream.
func TestMixedClassesKeepTheirOrder(t *testing.T) {
	p, qs, _ := newPipeline(t)
	var rs []drivers.Reading
	for i, c := range []drivers.Class{drivers.Telemetry, drivers.Alarm, drivers.Telemetry, drivers.Event, drivers.Alarm, drivers.Telemetry} {
		rs = append(rs, drivers.Reading{Device: "m1", Class: c, Values: map[string]drivers.Value{"i": drivers.Int(int64(i))}})
	}
	if err := p.Emit(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	for c, want := range map[drivers.Class][]int64{drivers.Telemetry: {0, 2, 5}, drivers.Alarm: {1, 4}, drivers.Event: {3}} {
		var got []int64
		for _, b := range qs.got(t, c) {
			r, err := wire.DecodeRecord(b)
			if err != nil {
				t.Fatal(err)
			}
			i, _ := r.Vals["i"].AsInt()
			got = append(got, i)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s got readings %v, want %v", c, got, want)
		}
	}
	if acc, _ := p.Counts(); acc != 6 {
		t.Errorf("accepted = %d, want 6", acc)
	}
}

// Emit reuses its encoding buffers from call to call (and across the
// goroutines calling it): every stored record is still the reading it
// was made from, whatever the calls before and beside it encoded.
func TestEmitBuffersAreReusedSafely(t *testing.T) {
	p, qs, _ := newPipeline(t)
	const callers, calls = 4, 50
	errs := make(chan error, callers)
	for w := range callers {
		go func() {
			for i := range calls {
				n := 1 + (w+i)%3 // calls of 1 to 3 readings, of different sizes
				rs := make([]drivers.Reading, n)
				for k := range rs {
					vals := map[string]drivers.Value{"w": drivers.Int(int64(w)), "i": drivers.Int(int64(i)), "k": drivers.Int(int64(k))}
					if k == 1 {
						vals["text"] = drivers.Text(fmt.Sprintf("%0*d", 10*(i%7+1), i))
					}
					rs[k] = drivers.Reading{Device: "m1", Values: vals}
				}
				if err := p.Emit(context.Background(), rs); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range callers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	next := map[int64]int64{} // per caller, the next call expected
	recs := qs.got(t, drivers.Telemetry)
	for j := 0; j < len(recs); {
		r, err := wire.DecodeRecord(recs[j])
		if err != nil {
			t.Fatalf("record %d: %v", j, err)
		}
		w, _ := r.Vals["w"].AsInt()
		i, _ := r.Vals["i"].AsInt()
		if i != next[w] {
			t.Fatalf("record %d: caller %d call %d, want call %d", j, w, i, next[w])
		}
		n := 1 + (w+i)%3
		for k := range n {
			r, err := wire.DecodeRecord(recs[j+int(k)])
			if err != nil {
				t.Fatalf("record %d: %v", j+int(k), err)
			}
			rw, _ := r.Vals["w"].AsInt()
			ri, _ := r.Vals["i"].AsInt()
			rk, _ := r.Vals["k"].AsInt()
			if rw != w || ri != i || rk != k {
				t.Fatalf("record %d = caller %d call %d reading %d, want %d %d %d", j+int(k), rw, ri, rk, w, i, k)
			}
			if txt, _ := r.Vals["text"].AsText(); k == 1 && txt != fmt.Sprintf("%0*d", 10*(i%7+1), i) {
				t.Fatalf("record %d: text %q", j+int(k), txt)
			}
		}
		next[w]++
		j += int(n)
	}
	for w := range int64(callers) {
		if next[w] != calls {
			t.Errorf("caller %d: %d calls stored, want %d", w, next[w], calls)
		}
	}
}

func TestUnsyncedClockAndBadInput(t *testing.T) {
	p, qs, db := newPipeline(t)
	p.ClockSynced = func() bool { return false }
	if err := p.Emit(context.Background(), []drivers.Reading{{Device: "m1", Values: map[string]drivers.Value{"x": drivers.Float(math.NaN()), "y": drivers.Int(1)}}}); err != nil {
		t.Fatal(err)
	}
	r, _ := wire.DecodeRecord(qs.got(t, drivers.Telemetry)[0])
	if r.TSrc != "unsynced" || r.Q&wire.QInvalidPoint == 0 || len(r.Vals) != 1 {
		t.Errorf("NaN point: record %+v", r)
	}
	if err := p.Emit(context.Background(), []drivers.Reading{{Device: "ghost"}}); !errors.Is(err, pipeline.ErrUnknownDevice) {
		t.Errorf("unknown device: %v", err)
	}
	db.Close() // the store goes away under the pipeline
	if err := p.Emit(context.Background(), []drivers.Reading{{Device: "m1", Values: map[string]drivers.Value{"y": drivers.Int(1)}}}); err == nil {
		t.Error("a queue failure must reach the caller")
	}
	if d := p.Dropped(); d["readings_closed"] != 1 {
		t.Errorf("dropped %v, want readings_closed 1", d)
	}
	if _, rej := p.Counts(); rej != 2 {
		t.Errorf("rejected = %d, want 2", rej)
	}
}

// discardQueue accepts every append and keeps nothing (a benchmark of
// the pipeline's own cost; never used where a queue's behaviour matters).
type discardQueue struct{}

func (discardQueue) Append(context.Context, ...[]byte) error                   { return nil }
func (discardQueue) Peek(context.Context, uint64, int) ([]uplink.Entry, error) { return nil, nil }
func (discardQueue) Ack(...uint64) error                                       { return nil }

// BenchmarkEmit is the pipeline's own cost per reading of a 4-point
// meter (mapping and encoding; the queue discards).
func BenchmarkEmit(b *testing.B) {
	p, _, _ := newPipeline(b)
	p.Queues[drivers.Telemetry] = discardQueue{}
	ctx := context.Background()
	r := []drivers.Reading{{Device: "m1", Time: time.Now(), Values: map[string]drivers.Value{
		"energy_kwh": drivers.Dec(12345678, -2), "voltage_a_v": drivers.Dec(2297, -1),
		"current_a_a": drivers.Dec(-1234, -3), "power_kw": drivers.Dec(12345, -4)}}}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Emit(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}
