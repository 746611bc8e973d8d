// Package fieldin takes the messages that recorders and kiosks publish to
// the field broker and keeps every one of them before it is acknowledged:
// decoded into readings when it decodes, or — when it does not — as a
// "rejected" record on the stream it was meant for (inside the evidence
// chain for evidence), carrying the reason, the topic and the raw payload,
// with an alarm so that someone looks at the device. An acknowledgement is
// a promise (docs/contract.md, "Rejected records").
package fieldin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/uplink/wire"
)

// Decoder turns one message of a device into readings.
type Decoder interface {
	Decode(event string, payload []byte) ([]drivers.Reading, error)
}

// Device is one field device the ingest knows.
type Device struct {
	Decoder Decoder
	// Stream names the class a message of an event was meant for.
	Stream func(event string) drivers.Class
	// Private reports a decode error that means the payload carries
	// personal data: the rejected record then keeps no raw bytes.
	Private func(error) bool
}

// Sink is where readings and records go (the pipeline): both return nil
// once durably queued.
type Sink interface {
	Emit(ctx context.Context, rs []drivers.Reading) error
	EmitRecord(ctx context.Context, c drivers.Class, r *wire.Record) error
}

// Options configure an Ingest.
type Options struct {
	Devices map[string]Device
	Sink    Sink
	// AlarmEvery bounds the message_rejected events of one device
	// (default DefaultAlarmEvery); rejections in between are counted and
	// reported with the next one. The gateway's default rule field-rejects
	// raises an alarm from them.
	AlarmEvery time.Duration
	Now        func() time.Time // default time.Now
	Logger     *slog.Logger
}

// EventRejected is the event (its "event" point) that says a device's
// messages were kept as rejected; the gateway's default rule
// field-rejects raises an alarm from it.
const EventRejected = "message_rejected"

// MaxPayload is the largest field message the gateway may accept (the
// field broker's max_payload may not be set above it): one kept raw as a
// rejected record, base64 (4/3 of its size) and all, must still fit in one
// uplink message the county decodes (wire.MaxInputBytes); a larger one would
// be acknowledged, queued and then never read by the platform.
const MaxPayload = wire.MaxInputBytes / 2

// DefaultAlarmEvery is Options.AlarmEvery's default.
const DefaultAlarmEvery = 10 * time.Minute

// ErrOptions reports invalid Options.
var ErrOptions = errors.New("fieldin: invalid options")

// ErrUnknownDevice reports a message from a device the ingest does not
// know (the broker authenticates devices, so this is a wiring error).
var ErrUnknownDevice = errors.New("fieldin: unknown device")

// Ingest keeps field messages. It is safe for concurrent use.
type Ingest struct {
	o   Options
	log *slog.Logger

	mu       sync.Mutex
	rejected map[string]uint64 // by device
	pending  map[string]uint64 // rejections not yet reported by an alarm
	lastAl   map[string]time.Time
}

// New checks o and returns an Ingest.
func New(o Options) (*Ingest, error) {
	if o.Sink == nil {
		return nil, fmt.Errorf("%w: no Sink", ErrOptions)
	}
	for id, d := range o.Devices {
		if d.Decoder == nil || d.Stream == nil {
			return nil, fmt.Errorf("%w: device %s needs a Decoder and a Stream", ErrOptions, id)
		}
	}
	if o.AlarmEvery <= 0 {
		o.AlarmEvery = DefaultAlarmEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Ingest{o: o, log: log, rejected: map[string]uint64{}, pending: map[string]uint64{}, lastAl: map[string]time.Time{}}, nil
}

// Topic is the field topic a message of a device and event came on.
func Topic(id, event string) string { return "field/" + id + "/" + event }

// Handle keeps one message of device id and returns nil once it is durably
// queued (decoded or as a rejected record): only then may the broker
// acknowledge it. An error means nothing was kept: the broker must not
// acknowledge, so that the device sends it again.
func (in *Ingest) Handle(ctx context.Context, id, event string, payload []byte) error {
	d, ok := in.o.Devices[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownDevice, id)
	}
	rs, err := d.Decoder.Decode(event, payload)
	if err == nil {
		if len(rs) == 0 {
			return nil
		}
		return in.o.Sink.Emit(ctx, rs)
	}
	return in.keepRejected(ctx, id, event, payload, d, err)
}

func (in *Ingest) keepRejected(ctx context.Context, id, event string, payload []byte, d Device, derr error) error {
	raw := payload
	if d.Private != nil && d.Private(derr) {
		raw = nil // never store or forward personal data, not even raw
	}
	now := in.o.Now()
	rec := wire.RejectedRecord(id, text(Topic(id, event)), text(event), reason(derr), raw, now.UnixMilli())
	rec.TSrc = "" // the sink says whether the gateway clock is synced
	class := d.Stream(event)
	if err := in.o.Sink.EmitRecord(ctx, class, &rec); err != nil {
		return fmt.Errorf("fieldin: %s %s: rejected message not kept: %w", id, event, err)
	}
	in.mu.Lock()
	in.rejected[id]++
	in.pending[id]++
	n := in.pending[id]
	due := now.Sub(in.lastAl[id]) >= in.o.AlarmEvery
	if due {
		in.pending[id], in.lastAl[id] = 0, now
	}
	in.mu.Unlock()
	in.log.Warn("field message kept as rejected", "device", id, "event", clip(event, 64), "stream", class.String(), "reason", rec.Vals["reason"].String())
	if !due {
		return nil
	}
	// An event: the gateway's default rule field-rejects raises the alarm.
	note := drivers.Reading{Device: id, Class: drivers.Event, Time: now, Values: map[string]drivers.Value{
		"event":    drivers.Text(EventRejected),
		"reason":   drivers.Text(clip(reason(derr), 200)),
		"topic":    drivers.Text(clip(Topic(id, event), 200)),
		"rejected": drivers.Int(int64(n)), // since the last such event
	}}
	if err := in.o.Sink.Emit(ctx, []drivers.Reading{note}); err != nil {
		// The message itself is kept; the event is retried with the next one.
		in.mu.Lock()
		in.pending[id] += n
		in.lastAl[id] = time.Time{}
		in.mu.Unlock()
		in.log.Error("message_rejected event not queued", "device", id, "err", err)
	}
	return nil
}

// Rejected returns how many messages of each device were kept as
// rejected records since start.
func (in *Ingest) Rejected() map[string]uint64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return maps.Clone(in.rejected)
}

// reason is the decode error as kept on the record: short, valid text.
func reason(err error) string { return text(clip(err.Error(), 500)) }

// text makes s valid, non-empty contract text.
func text(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if s == "" {
		return "-"
	}
	return s
}

func clip(s string, n int) string {
	b := []rune(s)
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
