package recorder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/firmware-sim/recordersim"
)

// The decoder accepts everything the independent simulator sends through a
// real broker during a shift, JSON and CBOR, and the evidence it reports
// is the real hash of the generated file.
func TestSimulatorShift(t *testing.T) {
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}

	start := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	r, err := New(Config{Device: "zfy-007"})
	if err != nil {
		t.Fatal(err)
	}
	type decoded struct {
		event string
		rd    drivers.Reading
	}
	var mu sync.Mutex
	var got []decoded
	var errs []error
	// Like the gateway: the device comes from the credentials, the event
	// from the topic's last level, decoded in an OnPublish hook, before the
	// PUBACK (mochi runs inline subscribers only after it).
	err = srv.AddHook(&onPublish{fn: func(pk packets.Packet) {
		rest, ok := strings.CutPrefix(pk.TopicName, "field/zfy-007/")
		mu.Lock()
		defer mu.Unlock()
		if !ok {
			t.Errorf("topic %s", pk.TopicName)
			return
		}
		rds, err := r.Decode(rest, pk.Payload)
		if err != nil {
			errs = append(errs, err)
			return
		}
		got = append(got, decoded{rest, rds[0]})
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	j := &recordersim.Journal{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = recordersim.Run(ctx, recordersim.Options{Broker: "tcp://" + l.Address(), ID: "zfy-007", Username: "zfy-007", Password: "pw",
		Speed: 1e6, Seed: 42, Start: start, Duration: 30 * time.Minute, RecordEvery: 2 * time.Minute,
		SOSEvery: 5 * time.Minute, CBORShare: 0.4, Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, e := range errs {
		t.Errorf("refused: %v", e)
	}
	entries := j.Entries()
	if len(got) != len(entries) {
		t.Fatalf("decoded %d of %d messages", len(got), len(entries))
	}
	classes := map[drivers.Class]int{}
	cbor := 0
	for i, e := range entries {
		d := got[i]
		classes[d.rd.Class]++
		if e.CBOR {
			cbor++
		}
		if d.event != e.Event {
			t.Fatalf("message %d: decoded %s, journal %s", i, d.event, e.Event)
		}
		// The device's own clock, exactly.
		if !d.rd.DeviceTime && !(e.Event == "device.status" && i == len(entries)-1) {
			t.Errorf("message %d (%s) has no device time", i, e.Event)
		}
		if d.rd.DeviceTime && !d.rd.Time.Equal(e.At) {
			t.Errorf("message %d: time %v, sent at %v", i, d.rd.Time, e.At)
		}
		if id, _ := d.rd.Values["msg_id"].AsText(); id == "" {
			t.Errorf("message %d has no msg_id", i)
		}
		switch e.Event {
		case "evidence.file":
			h := sha256.New()
			io.Copy(h, recordersim.FileReader(e.File.Seed, e.File.Size))
			sum := hex.EncodeToString(h.Sum(nil))
			if s, _ := d.rd.Values["sha256"].AsText(); s != sum {
				t.Errorf("evidence %s: sha256 %s, file hashes to %s", e.File.ID, s, sum)
			}
			if n, _ := d.rd.Values["size_bytes"].AsInt(); n != e.File.Size {
				t.Errorf("evidence %s: size %d, file has %d", e.File.ID, n, e.File.Size)
			}
		case "device.position":
			if e.CBOR {
				break
			}
			// The coordinates are the JSON literals, digit for digit.
			var env struct {
				Payload struct{ Lat, Lon json.Number }
			}
			if err := json.Unmarshal(e.Payload, &env); err != nil {
				t.Fatal(err)
			}
			if d.rd.Values["lat"].String() != string(env.Payload.Lat) || d.rd.Values["lon"].String() != string(env.Payload.Lon) {
				t.Errorf("position %v,%v from %s,%s", d.rd.Values["lat"], d.rd.Values["lon"], env.Payload.Lat, env.Payload.Lon)
			}
		}
	}
	last := got[len(got)-1].rd
	if ev, _ := last.Values["event"].AsText(); ev != "offline" || last.Class != drivers.Event {
		t.Errorf("the shift ends with %+v, want the offline event", last)
	}
	for _, c := range []drivers.Class{drivers.Telemetry, drivers.Event, drivers.Evidence} {
		if classes[c] == 0 {
			t.Errorf("no %s readings: %v", c, classes)
		}
	}
	sos := 0
	for _, d := range got {
		if ev, _ := d.rd.Values["event"].AsText(); ev == "sos" {
			sos++
			if d.rd.Class != drivers.Event {
				t.Errorf("an SOS decoded as %s, want events (the rules engine raises its alarm)", d.rd.Class)
			}
		}
	}
	if sos == 0 {
		t.Errorf("the shift has no SOS: %v", classes)
	}
	if cbor == 0 {
		t.Error("no CBOR messages")
	}
	t.Logf("%d messages (%d CBOR): %v", len(entries), cbor, classes)
}

// onPublish is a mochi hook that sees every message before its PUBACK.
type onPublish struct {
	mqtt.HookBase
	fn func(packets.Packet)
}

func (h *onPublish) ID() string           { return "decode" }
func (h *onPublish) Provides(b byte) bool { return b == mqtt.OnPublish }
func (h *onPublish) OnPublish(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	h.fn(pk)
	return pk, nil
}
