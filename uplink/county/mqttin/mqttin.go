// Package mqttin feeds the county ingest from an MQTT broker that offers
// shared subscriptions (mosquitto 2, EMQX, VerneMQ, HiveMQ): every worker
// subscribes to $share/<group>/townlink/v1/+/+/+/<stream> and the broker
// hands each message to one of them. (NATS and RabbitMQ accept such a
// filter over MQTT 3.1.1 but deliver nothing to it: use natsin there.)
//
// A message's PUBACK goes back only after its commit: the handler paho
// calls blocks until the batch holding the message is committed, and the
// client acknowledges when the handler returns. A worker that dies before
// that leaves the message unacknowledged; the broker sends it again when a
// worker of the group (re)connects with a persistent session.
package mqttin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/townlink/townlink/uplink/county"
	"github.com/townlink/townlink/uplink/wire"
)

// Defaults.
const (
	DefaultGroup   = "townlink-county"
	DefaultBatch   = 500
	DefaultLinger  = 50 * time.Millisecond
	retryAfterFail = time.Second
)

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("mqttin: invalid configuration")

// Subscriber is the part of mqttpub.Client this package uses.
type Subscriber interface {
	Subscribe(ctx context.Context, filter string, handler func(topic string, payload []byte)) error
}

// Config configures a worker.
type Config struct {
	Group  string        // shared-subscription group; default DefaultGroup
	Batch  int           // most messages per commit; default DefaultBatch
	Linger time.Duration // how long a batch waits to fill; default DefaultLinger
	Logger *slog.Logger
}

// Filters are the shared subscriptions of group: the four record streams
// and status of every gateway.
func Filters(group string) []string {
	var f []string
	for _, s := range []string{wire.StreamTelemetry, wire.StreamEvents, wire.StreamAlarms, wire.StreamEvidence, wire.StreamStatus} {
		f = append(f, "$share/"+group+"/"+wire.TopicRoot+"/+/+/+/"+s)
	}
	return f
}

type pending struct {
	msg  county.Message
	done chan struct{}
}

// Run subscribes with sub and commits what arrives through handle, in
// batches, until ctx ends. Messages of a failed commit are retried until
// they commit or ctx ends; they are never acknowledged uncommitted.
func Run(ctx context.Context, sub Subscriber, cfg Config, handle func(context.Context, []county.Message) error) error {
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Linger <= 0 {
		cfg.Linger = DefaultLinger
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	in := make(chan pending)
	stop := make(chan struct{}) // never closed while the process lives: see handler
	handler := func(topic string, payload []byte) {
		p := pending{msg: county.Message{Topic: topic, Payload: payload, Received: time.Now()}, done: make(chan struct{})}
		select {
		case in <- p:
		case <-ctx.Done():
			<-stop // never PUBACK what was not committed
		}
		select {
		case <-p.done:
		case <-ctx.Done():
			<-stop
		}
	}
	for _, f := range Filters(cfg.Group) {
		if err := sub.Subscribe(ctx, f, handler); err != nil {
			return fmt.Errorf("mqttin: subscribe %s: %w", f, err)
		}
	}
	for {
		batch, err := collect(ctx, in, cfg)
		if err != nil {
			return err
		}
		msgs := make([]county.Message, len(batch))
		for i, p := range batch {
			msgs[i] = p.msg
		}
		for {
			err := handle(ctx, msgs)
			if err == nil {
				break
			}
			cfg.Logger.Warn("commit failed; retrying", "messages", len(msgs), "err", err)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(retryAfterFail):
			}
		}
		for _, p := range batch {
			close(p.done)
		}
	}
}

// collect waits for one message, then takes more for up to Linger.
func collect(ctx context.Context, in <-chan pending, cfg Config) ([]pending, error) {
	var batch []pending
	select {
	case p := <-in:
		batch = append(batch, p)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	t := time.NewTimer(cfg.Linger)
	defer t.Stop()
	for len(batch) < cfg.Batch {
		select {
		case p := <-in:
			batch = append(batch, p)
		case <-t.C:
			return batch, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return batch, nil
}
