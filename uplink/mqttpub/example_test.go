package mqttpub_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/mqttpub"
)

// How the gateway wires the publisher and a forwarder for one stream.
func Example() {
	ctx := context.Background()
	log := slog.Default()
	mqttpub.InstallPahoLogger(log) // once, in main: process-global

	const status = "townlink/v1/320583/320583104/gw1/status"
	var tlsCfg *tls.Config // CA pool and the gateway's client certificate
	pub, err := mqttpub.New(mqttpub.Options{
		Brokers:  []string{"ssl://county-a.example:8883", "ssl://county-b.example:8883"},
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

	var queue uplink.Queue // the telemetry stream's durable queue
	fwd, err := uplink.NewForwarder(uplink.ForwarderConfig{
		Queue:     queue,
		Publisher: pub,
		Topic:     "townlink/v1/320583/320583104/gw1/telemetry",
		Frame:     func(recs [][]byte) ([]byte, error) { return nil, nil }, // wire.AppendBatch
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
