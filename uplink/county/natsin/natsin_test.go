package natsin_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/townlink/townlink/uplink/county"
	"github.com/townlink/townlink/uplink/county/natsin"
	"github.com/townlink/townlink/uplink/county/natstest"
	"github.com/townlink/townlink/uplink/mqttpub"
	"github.com/townlink/townlink/uplink/wire"
)

func connect(t *testing.T, urls []string, id string) *mqttpub.Client {
	t.Helper()
	c, err := mqttpub.New(mqttpub.Options{Brokers: urls, ClientID: id, Backoff: mqttpub.Backoff{Min: 100 * time.Millisecond, Max: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); c.Close() })
	c.Start(ctx)
	for !c.Connected() {
		time.Sleep(20 * time.Millisecond)
	}
	return c
}

// Messages published over MQTT (QoS 1, and a retained status) reach a
// worker of the durable consumer with their MQTT topic; cmd and ack do not.
func TestDurableConsumerDeliversMQTTMessages(t *testing.T) {
	cl := natstest.Start(t, 3)
	pub := connect(t, cl.MQTTURLs(), "gw-1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nc, err := nats.Connect(cl.Nodes[0].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := natsin.EnsureConsumer(ctx, js, natsin.Config{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, s := range []string{wire.StreamTelemetry, wire.StreamEvidence, wire.StreamStatus} {
		topic := wire.Topic("320583", "320583104", "gw-1", s)
		want[topic] = true
		if err := pub.Publish(ctx, topic, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{wire.StreamAck, wire.StreamCmd} {
		if err := pub.Publish(ctx, wire.Topic("320583", "320583104", "gw-1", s), []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.PublishRetained(ctx, wire.Topic("320583", "320583104", "gw-2", wire.StreamStatus), []byte("r")); err != nil {
		t.Fatal(err)
	}
	want[wire.Topic("320583", "320583104", "gw-2", wire.StreamStatus)] = true

	var mu sync.Mutex
	got := map[string]bool{}
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- natsin.Run(rctx, natsin.Config{URLs: cl.ClientURLs(), MaxWait: 200 * time.Millisecond}, func(_ context.Context, ms []county.Message) error {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range ms {
				got[m.Topic] = true
			}
			if len(got) >= len(want) {
				rcancel()
			}
			return nil
		})
	}()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v (got %v)", err, got)
	}
	time.Sleep(300 * time.Millisecond) // anything else that would arrive
	mu.Lock()
	defer mu.Unlock()
	for topic := range want {
		if !got[topic] {
			t.Errorf("%s not delivered", topic)
		}
	}
	if len(got) != len(want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
}

func TestTopicOf(t *testing.T) {
	got, err := natsin.TopicOf("$MQTT.msgs.townlink.v1.320583.320583104.gw-1.telemetry")
	if err != nil || got != "townlink/v1/320583/320583104/gw-1/telemetry" {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := natsin.TopicOf("townlink.v1.x"); !errors.Is(err, natsin.ErrSubject) {
		t.Fatalf("err %v", err)
	}
}

func FuzzTopicOf(f *testing.F) {
	f.Add("$MQTT.msgs.townlink.v1.320583.320583104.gw-1.telemetry")
	f.Add("$MQTT.msgs.")
	f.Fuzz(func(t *testing.T, subject string) {
		topic, err := natsin.TopicOf(subject)
		if err != nil {
			if !errors.Is(err, natsin.ErrSubject) {
				t.Fatalf("error %v does not wrap ErrSubject", err)
			}
			return
		}
		// The MQTT listener's mapping, backwards: no dot survives, and
		// mapping the topic forward gives the subject again.
		if strings.Contains(topic, ".") || natsin.SubjectPrefix+strings.ReplaceAll(topic, "/", ".") != subject {
			t.Fatalf("subject %q → topic %q does not map back", subject, topic)
		}
	})
}

// A platform ack published as a core NATS message reaches the gateway's
// MQTT subscription.
func TestPublishReachesMQTTSubscriber(t *testing.T) {
	cl := natstest.Start(t, 1)
	gw := connect(t, cl.MQTTURLs(), "gw-1")
	topic := wire.Topic("320583", "320583104", "gw-1", wire.StreamAck)
	got := make(chan []byte, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := gw.Subscribe(ctx, topic, func(_ string, p []byte) { got <- p }); err != nil {
		t.Fatal(err)
	}
	src, err := natsin.Dial(natsin.Config{URLs: cl.ClientURLs()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ack, _ := wire.EncodeAck(&wire.PlatformAck{Stream: wire.StreamTelemetry, Upto: 42})
	// The subscription is made on the gateway's connection; publish until
	// it is in place.
	for {
		if err := src.Publish(ctx, topic, ack); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-got:
			a, err := wire.DecodeAck(p)
			if err != nil || a.Upto != 42 {
				t.Fatalf("ack %+v, %v", a, err)
			}
			return
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("the ack never reached the MQTT subscriber")
		}
	}
}
