package mqttpub_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/badgerq"
	"github.com/townlink/townlink/uplink/mqttpub"
	"github.com/townlink/townlink/uplink/wire"
)

// How the gateway wires the publisher and a forwarder for one stream.
func Example() {
	ctx := context.Background()
	log := slog.Default()
	mqttpub.InstallPahoLogger(log) // once, in main: process-global

	const status = "townlink/v1/320583/320583104/gw1/status"
	var tlsCfg *tls.Config // CA pool and the gateway's client certificate
	pub, err := mqttpub.New(mqttpub.Options{
		// In the field: ssl://county-a.example:8883, ssl://county-b…; here
		// two loopback ports where nothing listens.
		Brokers:  []string{"tcp://127.0.0.1:1", "tcp://127.0.0.1:2"},
		ClientID: "gw1",
		TLS:      tlsCfg,
		Will:     &mqttpub.Message{Topic: status, Payload: []byte("offline status, CBOR")},
		Backoff:  mqttpub.Backoff{Min: time.Second, Max: time.Minute},
		Logger:   log,
	})
	if err != nil {
		log.Error("uplink config", "err", err)
		return
	}
	pub.Start(ctx) // a county that is down is not an error
	defer pub.Close()

	dir, err := os.MkdirTemp("", "townlink-example")
	if err != nil {
		log.Error("temp dir", "err", err)
		return
	}
	defer os.RemoveAll(dir)
	db, err := badgerq.Open(badgerq.Options{Dir: dir})
	if err != nil {
		log.Error("store", "err", err)
		return
	}
	defer db.Close()
	queue, err := db.Stream("telemetry", badgerq.StreamOptions{}) // the stream's durable queue
	if err != nil {
		log.Error("stream", "err", err)
		return
	}
	fwd, err := uplink.NewForwarder(uplink.ForwarderConfig{
		Queue:     queue,
		Publisher: pub,
		Topic:     "townlink/v1/320583/320583104/gw1/telemetry",
		Frame:     wire.Framer("gw1", "telemetry"),
		Logger:    log,
	})
	if err != nil {
		log.Error("forwarder config", "err", err)
		return
	}
	_ = fwd // go fwd.Run(ctx), owned and waited for by the gateway

	// While no county broker is reachable (none is here), Publish fails at
	// once instead of pretending: the forwarder keeps the batch queued.
	err = pub.Publish(ctx, "townlink/v1/320583/320583104/gw1/telemetry", []byte("a CBOR batch"))
	fmt.Println(errors.Is(err, mqttpub.ErrNotConnected))
	// Output: true
}
