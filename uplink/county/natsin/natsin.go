// Package natsin feeds the county ingest from NATS JetStream: the MQTT
// listener of nats-server stores every QoS 1 message in the stream
// $MQTT_msgs (subject "$MQTT.msgs." + the topic with / as .), and N workers
// share one durable pull consumer on it. NATS does not deliver MQTT
// shared subscriptions ($share/...) over MQTT 3.1.1; this consumer is how
// the load is shared instead.
//
// $MQTT_msgs keeps messages only while a consumer is interested in them:
// the durable consumer must exist before the gateways publish (EnsureConsumer,
// run by every worker at start).
//
// A message is acknowledged to JetStream only after the ingest committed it;
// a worker that dies leaves its messages unacknowledged, and JetStream
// delivers them again after AckWait, to whichever worker asks.
package natsin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/townlink/townlink/uplink/county"
	"github.com/townlink/townlink/uplink/wire"
)

// Defaults, applied by Run and EnsureConsumer to zero fields.
const (
	DefaultStream        = "$MQTT_msgs"
	DefaultDurable       = "townlink-county"
	DefaultBatch         = 500
	DefaultMaxWait       = time.Second
	DefaultAckWait       = 30 * time.Second
	DefaultMaxAckPending = 20000
)

// SubjectPrefix is where the MQTT listener stores QoS 1 messages.
const SubjectPrefix = "$MQTT.msgs."

// Errors of this package.
var (
	ErrConfig   = errors.New("natsin: invalid configuration")
	ErrConsumer = errors.New("natsin: consumer")
	ErrSubject  = errors.New("natsin: not an MQTT message subject")
)

// Config configures a worker.
type Config struct {
	URLs          []string // NATS URLs of the cluster's nodes
	Stream        string   // default DefaultStream
	Durable       string   // default DefaultDurable
	Batch         int      // messages per fetch (one commit); default DefaultBatch
	MaxWait       time.Duration
	AckWait       time.Duration // redelivery after a worker died; default DefaultAckWait
	MaxAckPending int
	Logger        *slog.Logger
}

func (c *Config) defaults() {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.Durable == "" {
		c.Durable = DefaultDurable
	}
	if c.Batch <= 0 {
		c.Batch = DefaultBatch
	}
	if c.MaxWait <= 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Filters are the subjects the consumer takes: the up streams a platform
// stores (the four record streams and status), never cmd or ack.
func Filters() []string {
	var f []string
	for _, s := range []string{wire.StreamTelemetry, wire.StreamEvents, wire.StreamAlarms, wire.StreamEvidence, wire.StreamStatus} {
		f = append(f, SubjectPrefix+"townlink.v1.*.*.*."+s)
	}
	return f
}

// TopicOf turns a stored message's subject back into its MQTT topic.
func TopicOf(subject string) (string, error) {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix)
	if !ok || rest == "" {
		return "", fmt.Errorf("%w: %q", ErrSubject, subject)
	}
	if strings.Contains(rest, "/") {
		// The listener turns every / of a topic into a dot: a slash here
		// came from a NATS publisher, not from an MQTT topic.
		return "", fmt.Errorf("%w: %q has a / after the prefix", ErrSubject, subject)
	}
	return strings.ReplaceAll(rest, ".", "/"), nil
}

// EnsureConsumer waits for the stream (the MQTT listener creates it when
// the first MQTT client connects) and creates or updates the durable
// consumer on it.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Consumer, error) {
	cfg.defaults()
	for {
		s, err := js.Stream(ctx, cfg.Stream)
		if err == nil {
			c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
				Durable:        cfg.Durable,
				FilterSubjects: Filters(),
				AckPolicy:      jetstream.AckExplicitPolicy,
				AckWait:        cfg.AckWait,
				MaxAckPending:  cfg.MaxAckPending,
				DeliverPolicy:  jetstream.DeliverAllPolicy,
			})
			if err != nil {
				return nil, fmt.Errorf("%w: %s on %s: %w", ErrConsumer, cfg.Durable, cfg.Stream, err)
			}
			return c, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			cfg.Logger.Warn("waiting for the stream", "stream", cfg.Stream, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: stream %s: %w", ErrConsumer, cfg.Stream, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Handler takes one fetch's messages; it returns nil once they are committed.
type Handler func(ctx context.Context, msgs []county.Message) error

// Source is one worker's connection to the cluster: messages come in
// through the durable consumer (Run), platform acks go out as core NATS
// messages (Publish).
type Source struct {
	cfg Config
	nc  *nats.Conn
	js  jetstream.JetStream
}

// Dial connects to the cluster (reconnecting for ever, to any node).
func Dial(cfg Config) (*Source, error) {
	cfg.defaults()
	if len(cfg.URLs) == 0 {
		return nil, fmt.Errorf("%w: no NATS URLs", ErrConfig)
	}
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(true))
	if err != nil {
		return nil, fmt.Errorf("%w: connect: %w", ErrConsumer, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w: %w", ErrConsumer, err)
	}
	return &Source{cfg: cfg, nc: nc, js: js}, nil
}

// Close closes the connection.
func (s *Source) Close() { s.nc.Close() }

// Publish sends payload as a core NATS message on the topic's subject
// (townlink/v1/… → townlink.v1.…): the MQTT listener hands it to the
// gateway's subscription at QoS 0, without storing it in JetStream. That
// is enough for a platform ack: one lost on the way (the gateway is
// offline, a node dies) costs a resend after the gateway's ack timeout or
// reconnect, and the resend is acknowledged again; never a record.
func (s *Source) Publish(_ context.Context, topic string, payload []byte) error {
	if err := s.nc.Publish(strings.ReplaceAll(topic, "/", "."), payload); err != nil {
		return fmt.Errorf("natsin: publish %s: %w", topic, err)
	}
	return nil
}

// Run ensures the consumer and hands batches of messages to handle until
// ctx ends. Messages are acknowledged after handle returned nil; when it
// fails they are Nak'd, and delivered again.
func (s *Source) Run(ctx context.Context, handle Handler) error {
	cons, err := EnsureConsumer(ctx, s.js, s.cfg)
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		if err := fetchOnce(ctx, cons, s.cfg, handle); err != nil {
			s.cfg.Logger.Warn("fetch failed; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	return ctx.Err()
}

// Run is Dial, Source.Run and Close.
func Run(ctx context.Context, cfg Config, handle Handler) error {
	s, err := Dial(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Run(ctx, handle)
}

func fetchOnce(ctx context.Context, cons jetstream.Consumer, cfg Config, handle Handler) error {
	batch, err := cons.Fetch(cfg.Batch, jetstream.FetchMaxWait(cfg.MaxWait))
	if err != nil {
		return err
	}
	var raw []jetstream.Msg
	var msgs []county.Message
	now := time.Now()
	for m := range batch.Messages() {
		raw = append(raw, m)
		topic, err := TopicOf(m.Subject())
		if err != nil {
			topic = m.Subject() // the ingest audits it as a bad topic
		}
		msgs = append(msgs, county.Message{Topic: topic, Payload: m.Data(), Received: now})
	}
	if len(raw) == 0 {
		return batch.Error()
	}
	if err := handle(ctx, msgs); err != nil {
		for _, m := range raw {
			_ = m.Nak()
		}
		return err
	}
	for _, m := range raw {
		if err := m.Ack(); err != nil {
			cfg.Logger.Debug("ack failed; the message will come again", "err", err)
		}
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
		return err
	}
	return nil
}
