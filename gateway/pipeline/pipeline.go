// Package pipeline maps driver readings to uplink records and queues them
// durably on the stream their class names. It is the one place where
// drivers.Reading becomes wire.Record.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/wire"
)

// Device is what the pipeline knows of a configured device.
type Device struct {
	Kind string // contract kind: power, water, enterprise, …
	Grid string
}

// Pipeline turns readings into queued records.
type Pipeline struct {
	Gateway string
	Devices map[string]Device
	// Queues by class; a class without a queue is an error. A queue's
	// Append must not keep the slices it is given once it returns (badgerq
	// copies them): Emit reuses its encoding buffers.
	Queues map[drivers.Class]uplink.Queue
	// ClockSynced reports whether the gateway clock is synced (tsrc).
	ClockSynced func() bool
	// DropReason names why a queue refused an append (for the status's
	// dropped counts); nil names every failure "store_error".
	DropReason func(error) string
	// Observe, when set, sees every reading of a successful Emit, after it
	// is queued (the rules engine; it must not block for long).
	Observe func(ctx context.Context, rs []drivers.Reading)

	accepted, rejected atomic.Uint64
	dropMu             sync.Mutex
	drops              map[string]uint64
	bufs               sync.Pool // of *emitBuf
}

// emitBuf holds one Emit's encoded records; the queue copies what it is
// given, so it is reused once Emit returns.
type emitBuf struct {
	buf  []byte
	recs [][]byte
}

// maxPooledEmit bounds the encoding buffer kept for the next Emit.
const maxPooledEmit = 64 << 10

// Errors.
var (
	ErrUnknownDevice = errors.New("pipeline: reading from an unknown device")
	ErrNoQueue       = errors.New("pipeline: no queue for stream")
)

// Emit maps readings to records and returns nil once every one is durably
// queued. Readings of one call that share a stream are appended together.
func (p *Pipeline) Emit(ctx context.Context, rs []drivers.Reading) error {
	synced := p.ClockSynced == nil || p.ClockSynced()
	// One buffer and one list for the call, reused by later calls: the
	// queue copies what it is given. recs is in reading order; counts says
	// how many of each class.
	eb, _ := p.bufs.Get().(*emitBuf)
	if eb == nil {
		eb = &emitBuf{}
	}
	defer p.putBuf(eb)
	buf := eb.buf[:0]
	if cap(buf) < 192*len(rs) {
		buf = make([]byte, 0, 192*len(rs))
	}
	recs := eb.recs[:0]
	if cap(recs) < len(rs) {
		recs = make([][]byte, 0, len(rs))
	}
	recs = recs[:len(rs)]
	var counts [drivers.Evidence + 1]int
	for i := range rs {
		start := len(buf)
		var err error
		buf, err = p.encode(buf, &rs[i], synced)
		eb.buf = buf // grown: keep the larger one
		if err != nil {
			p.rejected.Add(1)
			return err
		}
		if int(rs[i].Class) >= len(counts) {
			p.rejected.Add(1)
			return fmt.Errorf("%w: class %d", ErrNoQueue, rs[i].Class)
		}
		recs[i] = buf[start:len(buf):len(buf)]
		counts[rs[i].Class]++
	}
	eb.recs = recs
	for c, n := range counts {
		if n == 0 {
			continue
		}
		of := recs
		if n < len(rs) { // readings of several classes: this class's, in order
			of = make([][]byte, 0, n)
			for i := range rs {
				if int(rs[i].Class) == c {
					of = append(of, recs[i])
				}
			}
		}
		if err := p.append(ctx, drivers.Class(c), of); err != nil {
			return err
		}
	}
	if p.Observe != nil {
		p.Observe(ctx, rs)
	}
	return nil
}

// putBuf returns an Emit's buffers for the next call, unless they grew
// large.
func (p *Pipeline) putBuf(eb *emitBuf) {
	if cap(eb.buf) > maxPooledEmit {
		return
	}
	clear(eb.recs) // no reference into the buffer outlives the call
	eb.recs = eb.recs[:0]
	p.bufs.Put(eb)
}

// append queues the records of one class.
func (p *Pipeline) append(ctx context.Context, c drivers.Class, recs [][]byte) error {
	q := p.Queues[c]
	if q == nil {
		return fmt.Errorf("%w %s", ErrNoQueue, c)
	}
	if err := q.Append(ctx, recs...); err != nil {
		p.rejected.Add(uint64(len(recs)))
		p.countDrop(err, len(recs))
		return fmt.Errorf("pipeline: queue %s: %w", c, err)
	}
	p.accepted.Add(uint64(len(recs)))
	return nil
}

// EmitRecord queues one record built outside the drivers (a field
// message kept raw as a "rejected" record) on the stream of class c and
// returns nil once it is durably queued. The record's grid and tsrc are
// filled in from the device and the clock when empty.
func (p *Pipeline) EmitRecord(ctx context.Context, c drivers.Class, r *wire.Record) error {
	q := p.Queues[c]
	if q == nil {
		return fmt.Errorf("%w %s", ErrNoQueue, c)
	}
	if r.Grid == "" {
		r.Grid = p.Devices[r.Dev].Grid
	}
	if r.TSrc == "" {
		r.TSrc = wire.TSrcUnsynced
		if p.ClockSynced == nil || p.ClockSynced() {
			r.TSrc = wire.TSrcGateway
		}
	}
	b, err := wire.EncodeRecord(r)
	if err != nil {
		p.rejected.Add(1)
		return fmt.Errorf("pipeline: device %s: %w", r.Dev, err)
	}
	if err := q.Append(ctx, b); err != nil {
		p.rejected.Add(1)
		p.countDrop(err, 1)
		return fmt.Errorf("pipeline: queue %s: %w", c, err)
	}
	p.accepted.Add(1)
	return nil
}

// countDrop counts n readings a queue would not keep, by reason: they
// were never accepted (the caller got the error), but they are lost, and
// the status says so.
func (p *Pipeline) countDrop(err error, n int) {
	reason := "store_error"
	if p.DropReason != nil {
		reason = p.DropReason(err)
	}
	p.dropMu.Lock()
	if p.drops == nil {
		p.drops = map[string]uint64{}
	}
	p.drops["readings_"+reason] += uint64(n)
	p.dropMu.Unlock()
}

// Dropped returns readings that could not be queued, by reason
// ("readings_disk_full", "readings_store_error", …).
func (p *Pipeline) Dropped() map[string]uint64 {
	p.dropMu.Lock()
	defer p.dropMu.Unlock()
	return maps.Clone(p.drops)
}

// Counts returns readings accepted (queued) and rejected so far.
func (p *Pipeline) Counts() (accepted, rejected uint64) {
	return p.accepted.Load(), p.rejected.Load()
}

func (p *Pipeline) encode(dst []byte, r *drivers.Reading, synced bool) ([]byte, error) {
	d, ok := p.Devices[r.Device]
	if !ok {
		return dst, fmt.Errorf("%w: %q", ErrUnknownDevice, r.Device)
	}
	ts := r.Time
	if ts.IsZero() {
		ts = time.Now()
	}
	tsrc := "unsynced"
	switch {
	case r.DeviceTime:
		tsrc = "device"
	case synced:
		tsrc = "gateway"
	}
	rec := wire.Record{
		Dev:  r.Device,
		Kind: d.Kind,
		TS:   ts.UnixMilli(),
		TSrc: tsrc,
		Grid: d.Grid,
		Q:    quality(r.Quality),
	}
	// The points go to the encoder as a slice (on the stack for the usual
	// few): no map per reading.
	var ptsBuf [smallPoints]wire.Point
	pts := ptsBuf[:0]
	for name, v := range r.Values {
		if f, ok := v.AsFloat(); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			// A float register holding NaN/Inf has no wire form: leave the
			// point out and flag the record, rather than lose the rest.
			rec.Q |= wire.QInvalidPoint
			continue
		}
		wv, err := Value(v)
		if err != nil {
			return dst, fmt.Errorf("pipeline: device %s point %s: %w", r.Device, name, err)
		}
		pts = append(pts, wire.Point{Name: name, Value: wv})
	}
	out, err := wire.AppendRecordPoints(dst, &rec, pts)
	if err != nil {
		return dst, fmt.Errorf("pipeline: device %s: %w", r.Device, err)
	}
	return out, nil
}

// smallPoints is how many points a reading may have before encode's
// point list leaves the stack.
const smallPoints = 16

// quality maps the drivers' quality flags to the contract's q bits (each
// side owns its own constants; this is the one mapping between them).
func quality(q uint32) uint64 {
	var out uint64
	if q&drivers.QualityInvalidFields != 0 {
		out |= wire.QInvalidFields
	}
	if q&drivers.QualityClockSkew != 0 {
		out |= wire.QClockSkew
	}
	return out
}

// ErrValue reports a value that has no wire form.
var ErrValue = errors.New("pipeline: value has no wire form")

// Value maps a driver value to its wire value.
func Value(v drivers.Value) (wire.Value, error) {
	switch v.Kind() {
	case drivers.KindDecimal:
		m, e, _ := v.Decimal()
		return wire.Dec(m, e), nil
	case drivers.KindInt:
		i, _ := v.AsInt()
		return wire.Int(i), nil
	case drivers.KindFloat:
		f, _ := v.AsFloat()
		return wire.Float(f), nil
	case drivers.KindBool:
		b, _ := v.AsBool()
		return wire.Bool(b), nil
	case drivers.KindText:
		s, _ := v.AsText()
		return wire.Text(s), nil
	}
	return wire.Value{}, fmt.Errorf("%w: kind %d", ErrValue, v.Kind())
}

// StreamOf names the uplink stream of a class.
func StreamOf(c drivers.Class) string {
	switch c {
	case drivers.Event:
		return wire.StreamEvents
	case drivers.Alarm:
		return wire.StreamAlarms
	case drivers.Evidence:
		return wire.StreamEvidence
	}
	return wire.StreamTelemetry
}
