package fieldin_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/kiosk"
	"github.com/townlink/townlink/drivers/recorder"
	"github.com/townlink/townlink/gateway/fieldin"
	"github.com/townlink/townlink/gateway/pipeline"
	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/badgerq"
	"github.com/townlink/townlink/uplink/wire"
)

type rig struct {
	in *fieldin.Ingest
	qs map[drivers.Class]*badgerq.Queue
	p  *pipeline.Pipeline
}

// newRig is the real path below the ingest: pipeline and Badger queues,
// evidence sealed into its chain.
func newRig(t *testing.T, now func() time.Time) *rig {
	t.Helper()
	return newRigFor(t, now, "zfy-001", "kiosk-1")
}

// newRigFor is newRig with the recorder and the kiosk named recID and
// kioskID.
func newRigFor(t testing.TB, now func() time.Time, recID, kioskID string) *rig {
	t.Helper()
	db, err := badgerq.Open(badgerq.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r := &rig{qs: map[drivers.Class]*badgerq.Queue{}}
	queues := map[drivers.Class]uplink.Queue{}
	for c, name := range map[drivers.Class]string{drivers.Telemetry: "telemetry", drivers.Event: "events", drivers.Alarm: "alarms", drivers.Evidence: "evidence"} {
		q, err := db.Stream(name, badgerq.StreamOptions{Seal: wire.NewSealer(name, nil).Seal})
		if err != nil {
			t.Fatal(err)
		}
		r.qs[c], queues[c] = q, q
	}
	r.p = &pipeline.Pipeline{Gateway: "gw-1", Queues: queues, ClockSynced: func() bool { return true },
		Devices: map[string]pipeline.Device{recID: {Kind: "recorder", Grid: "g-1"}, kioskID: {Kind: "kiosk"}}}
	rec, _ := recorder.New(recorder.Config{Device: recID})
	k, _ := kiosk.New(kiosk.Config{Device: kioskID})
	r.in, err = fieldin.New(fieldin.Options{Sink: r.p, Now: now, Devices: map[string]fieldin.Device{
		recID:   {Decoder: rec, Stream: recorder.Stream},
		kioskID: {Decoder: k, Stream: kiosk.Stream, Private: func(err error) bool { return errors.Is(err, kiosk.ErrPersonalData) }},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) records(t *testing.T, c drivers.Class) []wire.Record {
	t.Helper()
	es, err := r.qs[c].Peek(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []wire.Record
	for _, e := range es {
		rec, err := wire.DecodeRecord(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *rec)
	}
	return out
}

// A message that does not decode is kept as a rejected record on the
// stream it was meant for — evidence inside the chain — with its raw
// bytes, and a message_rejected event is queued; a second one within the
// interval is kept and counted with the next event.
func TestUndecodableMessagesAreKeptRawOnTheirStream(t *testing.T) {
	now := time.UnixMilli(1_760_000_000_000)
	r := newRig(t, func() time.Time { return now })
	ctx := context.Background()
	bad := []byte(`{"file_id":"F1","sha256":"not hex at all"}`)
	if err := r.in.Handle(ctx, "zfy-001", "evidence.file", bad); err != nil {
		t.Fatal(err)
	}
	if err := r.in.Handle(ctx, "zfy-001", "no.such.event", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	ev := r.records(t, drivers.Evidence)
	if len(ev) != 1 || ev[0].Kind != wire.KindRejected || ev[0].Dev != "zfy-001" || ev[0].Grid != "g-1" {
		t.Fatalf("evidence stream: %+v", ev)
	}
	raw, _ := ev[0].Vals["raw_b64"].AsText()
	if got, _ := base64.StdEncoding.DecodeString(raw); string(got) != string(bad) {
		t.Errorf("raw kept %q, want %q", got, bad)
	}
	if topic, _ := ev[0].Vals["topic"].AsText(); topic != "field/zfy-001/evidence.file" {
		t.Errorf("topic %q", topic)
	}
	if err := wire.VerifyChain(ev, nil); err != nil {
		t.Errorf("the rejected evidence record is not in the chain: %v", err)
	}
	// The events stream: the rejected unknown event, and one
	// message_rejected (the default rule field-rejects raises the alarm).
	notes := func() (rejected, notes []wire.Record) {
		for _, e := range r.records(t, drivers.Event) {
			if e.Kind == wire.KindRejected {
				rejected = append(rejected, e)
			} else if ev, _ := e.Vals["event"].AsText(); ev == "message_rejected" {
				notes = append(notes, e)
			}
		}
		return rejected, notes
	}
	rejected, ns := notes()
	if len(rejected) != 1 || len(ns) != 1 {
		t.Fatalf("events stream: %d rejected records, %d message_rejected events within the interval (want 1, 1)", len(rejected), len(ns))
	}
	if reason, _ := rejected[0].Vals["reason"].AsText(); !strings.Contains(reason, "unknown event") {
		t.Errorf("reason %q does not say why", reason)
	}
	if n := r.qs[drivers.Alarm].Stats().LastSeq; n != 0 {
		t.Errorf("fieldin wrote %d alarm records itself", n)
	}
	now = now.Add(fieldin.DefaultAlarmEvery + time.Minute)
	if err := r.in.Handle(ctx, "zfy-001", "evidence.file", bad); err != nil {
		t.Fatal(err)
	}
	if _, ns = notes(); len(ns) != 2 {
		t.Fatalf("%d message_rejected events after the interval, want 2", len(ns))
	}
	if n, _ := ns[1].Vals["rejected"].AsInt(); n != 2 {
		t.Errorf("the second event counts %d rejections, want 2 (one held back + this one)", n)
	}
	if got := r.in.Rejected()["zfy-001"]; got != 3 {
		t.Errorf("Rejected = %d, want 3", got)
	}
}

// A kiosk message refused for carrying a resident ID number is kept as a
// rejected record without its bytes: personal data never leaves the box.
func TestPersonalDataIsNotKeptRaw(t *testing.T) {
	r := newRig(t, time.Now)
	msg := []byte(`{"ticket":"A001","queue":"tax","id_card":"110101199003074578"}`)
	if err := r.in.Handle(context.Background(), "kiosk-1", "ticket.issued", msg); err != nil {
		t.Fatal(err)
	}
	ev := r.records(t, drivers.Event) // the rejected record and the message_rejected event
	if len(ev) != 2 || ev[0].Kind != wire.KindRejected {
		t.Fatalf("events: %+v", ev)
	}
	for _, e := range ev {
		for k, v := range e.Vals {
			if strings.Contains(v.String(), "1101011990") {
				t.Errorf("%s carries the ID number: %s", k, v)
			}
		}
	}
	if raw, _ := ev[0].Vals["raw_b64"].AsText(); raw != "" {
		t.Errorf("raw kept: %q", raw)
	}
}

// A message that decodes goes through as readings.
func TestAValidMessageIsDecoded(t *testing.T) {
	r := newRig(t, time.Now)
	msg := []byte(`{"online":true,"battery_pct":80,"storage_free_mb":1000,"recording":false}`)
	if err := r.in.Handle(context.Background(), "zfy-001", "device.status", msg); err != nil {
		t.Fatal(err)
	}
	tel := r.records(t, drivers.Telemetry)
	if len(tel) != 1 || tel[0].Kind != "recorder" {
		t.Fatalf("telemetry: %+v", tel)
	}
}

// When the store refuses, nothing is acknowledged: Handle fails.
func TestNothingKeptMeansAnError(t *testing.T) {
	r := newRig(t, time.Now)
	r.p.Queues = map[drivers.Class]uplink.Queue{} // no queue at all
	if err := r.in.Handle(context.Background(), "zfy-001", "evidence.file", []byte(`garbage`)); err == nil {
		t.Fatal("a message that was not kept was reported kept")
	}
	if err := r.in.Handle(context.Background(), "nobody", "x", nil); !errors.Is(err, fieldin.ErrUnknownDevice) {
		t.Errorf("unknown device: %v", err)
	}
}

// A message of MaxPayload bytes kept raw (base64) still fits in one uplink
// message with room for the record and the batch around it.
func TestMaxPayloadKeptRawFitsTheUplink(t *testing.T) {
	if n := base64.StdEncoding.EncodedLen(fieldin.MaxPayload) + 1<<20; n > wire.MaxInputBytes {
		t.Fatalf("a rejected record of %d raw bytes needs %d bytes, the county reads %d", fieldin.MaxPayload, n, wire.MaxInputBytes)
	}
}
