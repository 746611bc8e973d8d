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
	"github.com/townlink/townlink/uplink/wire"
)

// memQueue records appends; the pipeline's mapping is under test here,
// the real queue has its own conformance suite.
type memQueue struct {
	got [][]byte
	err error
}

func (q *memQueue) Append(_ context.Context, data ...[]byte) error {
	if q.err != nil {
		return q.err
	}
	q.got = append(q.got, data...)
	return nil
}
func (q *memQueue) Peek(context.Context, uint64, int) ([]uplink.Entry, error) { return nil, nil }
func (q *memQueue) Ack(...uint64) error                                       { return nil }

func newPipeline() (*pipeline.Pipeline, map[drivers.Class]*memQueue) {
	qs := map[drivers.Class]*memQueue{drivers.Telemetry: {}, drivers.Event: {}, drivers.Alarm: {}, drivers.Evidence: {}}
	p := &pipeline.Pipeline{
		Gateway:     "gw-1",
		Devices:     map[string]pipeline.Device{"m1": {Kind: "power", Grid: "320583104001-02"}, "door": {Kind: "gpio"}},
		Queues:      map[drivers.Class]uplink.Queue{},
		ClockSynced: func() bool { return true },
	}
	for c, q := range qs {
		p.Queues[c] = q
	}
	return p, qs
}

func TestReadingsBecomeExactRecordsOnTheirStream(t *testing.T) {
	p, qs := newPipeline()
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
	if len(qs[drivers.Telemetry].got) != 1 || len(qs[drivers.Alarm].got) != 1 || len(qs[drivers.Event].got) != 0 {
		t.Fatalf("queued telemetry %d alarms %d events %d", len(qs[drivers.Telemetry].got), len(qs[drivers.Alarm].got), len(qs[drivers.Event].got))
	}
	r, err := wire.DecodeRecord(qs[drivers.Telemetry].got[0])
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
	a, _ := wire.DecodeRecord(qs[drivers.Alarm].got[0])
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
	p, qs := newPipeline()
	var rs []drivers.Reading
	for i, c := range []drivers.Class{drivers.Telemetry, drivers.Alarm, drivers.Telemetry, drivers.Event, drivers.Alarm, drivers.Telemetry} {
		rs = append(rs, drivers.Reading{Device: "m1", Class: c, Values: map[string]drivers.Value{"i": drivers.Int(int64(i))}})
	}
	if err := p.Emit(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	for c, want := range map[drivers.Class][]int64{drivers.Telemetry: {0, 2, 5}, drivers.Alarm: {1, 4}, drivers.Event: {3}} {
		var got []int64
		for _, b := range qs[c].got {
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

func TestUnsyncedClockAndBadInput(t *testing.T) {
	p, qs := newPipeline()
	p.ClockSynced = func() bool { return false }
	if err := p.Emit(context.Background(), []drivers.Reading{{Device: "m1", Values: map[string]drivers.Value{"x": drivers.Float(math.NaN()), "y": drivers.Int(1)}}}); err != nil {
		t.Fatal(err)
	}
	r, _ := wire.DecodeRecord(qs[drivers.Telemetry].got[0])
	if r.TSrc != "unsynced" || r.Q&wire.QInvalidPoint == 0 || len(r.Vals) != 1 {
		t.Errorf("NaN point: record %+v", r)
	}
	if err := p.Emit(context.Background(), []drivers.Reading{{Device: "ghost"}}); !errors.Is(err, pipeline.ErrUnknownDevice) {
		t.Errorf("unknown device: %v", err)
	}
	qs[drivers.Telemetry].err = errors.New("disk full")
	if err := p.Emit(context.Background(), []drivers.Reading{{Device: "m1", Values: map[string]drivers.Value{"y": drivers.Int(1)}}}); err == nil {
		t.Error("a queue failure must reach the caller")
	}
	if _, rej := p.Counts(); rej != 2 {
		t.Errorf("rejected = %d, want 2", rej)
	}
}

// discardQueue accepts every append and keeps nothing.
type discardQueue struct{ memQueue }

func (discardQueue) Append(context.Context, ...[]byte) error { return nil }

// BenchmarkEmit is the pipeline's own cost per reading of a 4-point
// meter (mapping and encoding; the queue discards).
func BenchmarkEmit(b *testing.B) {
	p, _ := newPipeline()
	p.Queues[drivers.Telemetry] = &discardQueue{}
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
