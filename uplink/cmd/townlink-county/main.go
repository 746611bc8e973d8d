// Command townlink-county is the county's receiving side of the uplink
// contract: ingest workers that take the gateways' messages from a NATS
// JetStream durable consumer (or an MQTT shared subscription), decode them by
// topic identity, audit them and store them in PostgreSQL, acknowledging
// "ack: platform" gateways once their records are committed. See
// docs/county.md. It is a separate binary so that the gateway that ships to
// townships links neither NATS nor PostgreSQL.
//
//	townlink-county ingest -pg DSN -nats URL,... -mqtt URL,... [-ack platform] [-keys FILE] [-worker NAME]
//	townlink-county ingest -pg DSN -source mqtt -mqtt URL [-group NAME]    (mosquitto 2, EMQX: $share)
//	townlink-county report -pg DSN
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/townlink/townlink/uplink/county"
	"github.com/townlink/townlink/uplink/county/mqttin"
	"github.com/townlink/townlink/uplink/county/natsin"
	"github.com/townlink/townlink/uplink/county/pgstore"
	"github.com/townlink/townlink/uplink/mqttpub"
	"github.com/townlink/townlink/uplink/wire"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "townlink-county:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: townlink-county ingest|report [flags] (see docs/county.md)")
	}
	switch args[0] {
	case "ingest":
		return ingest(ctx, args[1:], stderr)
	case "report":
		return report(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown command %q: want ingest or report", args[0])
}

type ingestFlags struct {
	pg, natsURLs, mqttURLs, source, ack, keys, worker, group, durable, logLevel string
	batch                                                                       int
	ackWait                                                                     time.Duration
}

func parseIngest(args []string, stderr io.Writer) (*ingestFlags, error) {
	f := &ingestFlags{}
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host, _ := os.Hostname()
	fs.StringVar(&f.pg, "pg", "", "PostgreSQL connection string (required)")
	fs.StringVar(&f.natsURLs, "nats", "", "NATS URLs of the cluster's nodes, comma-separated (source nats)")
	fs.StringVar(&f.mqttURLs, "mqtt", "", "MQTT broker URLs, comma-separated: acks are published there (and read from there with -source mqtt)")
	fs.StringVar(&f.source, "source", "nats", "where messages come from: nats (JetStream durable consumer) or mqtt ($share subscription)")
	fs.StringVar(&f.ack, "ack", "platform", "platform: publish {stream, upto} after each commit; broker: gateways delete on PUBACK, publish nothing")
	fs.StringVar(&f.keys, "keys", "", "file of registered gateway keys, \"<gw> ed25519:<key>\" per line")
	fs.StringVar(&f.worker, "worker", fmt.Sprintf("%s-%d", host, os.Getpid()), "this worker's name (MQTT client id suffix, ingest_counters row)")
	fs.StringVar(&f.group, "group", mqttin.DefaultGroup, "shared-subscription group (source mqtt)")
	fs.StringVar(&f.durable, "durable", natsin.DefaultDurable, "JetStream durable consumer name (source nats)")
	fs.IntVar(&f.batch, "batch", natsin.DefaultBatch, "messages per commit")
	fs.DurationVar(&f.ackWait, "ack-wait", natsin.DefaultAckWait, "JetStream redelivers a message not acknowledged this long (a dead worker's)")
	fs.StringVar(&f.logLevel, "log", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case f.pg == "":
		return nil, errors.New("ingest: -pg is required")
	case f.source != "nats" && f.source != "mqtt":
		return nil, fmt.Errorf("ingest: -source %q: want nats or mqtt", f.source)
	case f.source == "nats" && f.natsURLs == "":
		return nil, errors.New("ingest: -source nats needs -nats")
	case f.mqttURLs == "":
		return nil, errors.New("ingest: -mqtt is required (acks; with NATS it also creates the MQTT streams)")
	case f.ack != "platform" && f.ack != "broker":
		return nil, fmt.Errorf("ingest: -ack %q: want platform or broker", f.ack)
	}
	return f, nil
}

func ingest(ctx context.Context, args []string, stderr io.Writer) error {
	f, err := parseIngest(args, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("ingest: -log: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("worker", f.worker)
	var keys map[string]wire.Verifier
	if f.keys != "" {
		if keys, err = readKeys(f.keys); err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
	}
	store, err := pgstore.Open(ctx, f.pg, f.worker, log)
	if err != nil {
		return err
	}
	defer store.Close()
	mq, err := connectMQTT(ctx, f, log)
	if err != nil {
		return err
	}
	defer mq.Close()
	// Acks go out the way messages come in: as core NATS messages with
	// the NATS source (QoS 0 to the gateway, no JetStream write), at QoS 1
	// through the broker with the MQTT source.
	var src *natsin.Source
	var acks county.Publisher = mq
	if f.source == "nats" {
		src, err = natsin.Dial(natsin.Config{URLs: split(f.natsURLs), Durable: f.durable, Batch: f.batch, AckWait: f.ackWait, Logger: log})
		if err != nil {
			return err
		}
		defer src.Close()
		acks = src
	}
	cfg := county.Config{Store: store, Keys: keys, Logger: log}
	if f.ack == "platform" {
		cfg.Acks = acks
	}
	in, err := county.New(cfg)
	if err != nil {
		return err
	}
	st := &stats{log: log, last: time.Now()}
	handle := func(ctx context.Context, msgs []county.Message) error {
		t0 := time.Now()
		res, err := in.Handle(ctx, msgs)
		if err != nil {
			return err
		}
		st.add(len(msgs), res, time.Since(t0))
		return nil
	}
	log.Info("ingest running", "source", f.source, "ack", f.ack, "keys", len(keys))
	if f.source == "mqtt" {
		return mqttin.Run(ctx, mq, mqttin.Config{Group: f.group, Batch: f.batch, Logger: log}, handle)
	}
	return src.Run(ctx, handle)
}

// connectMQTT starts the MQTT client (acks; the $share subscriptions with
// -source mqtt) and waits for its first connection: on NATS that
// connection is what creates the $MQTT_msgs stream the consumer needs.
func connectMQTT(ctx context.Context, f *ingestFlags, log *slog.Logger) (*mqttpub.Client, error) {
	mq, err := mqttpub.New(mqttpub.Options{
		Brokers: split(f.mqttURLs), ClientID: "townlink-county-" + f.worker,
		PersistentSession: f.source == "mqtt", Logger: log.With("part", "mqtt"),
		Backoff: mqttpub.Backoff{Min: 250 * time.Millisecond, Max: 5 * time.Second},
	})
	if err != nil {
		return nil, err
	}
	mq.Start(ctx)
	for !mq.Connected() {
		select {
		case <-ctx.Done():
			mq.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return mq, nil
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// stats logs what the worker committed, every 10 s.
type stats struct {
	log                                      *slog.Logger
	last                                     time.Time
	msgs, inserted, dups, conflicts, problem int
	commits                                  int
	busy, longest                            time.Duration
}

func (s *stats) add(msgs int, r *county.Result, took time.Duration) {
	s.commits++
	s.busy += took
	s.longest = max(s.longest, took)
	s.msgs += msgs
	s.inserted += r.Inserted
	s.dups += r.Duplicates
	s.conflicts += r.Conflicts
	s.problem += r.Problems
	if time.Since(s.last) < 10*time.Second {
		return
	}
	s.log.Info("committed", "messages", s.msgs, "records", s.inserted, "duplicates", s.dups, "conflicts", s.conflicts, "problems", s.problem,
		"commits", s.commits, "mean_commit", (s.busy / time.Duration(s.commits)).Round(time.Millisecond), "longest_commit", s.longest.Round(time.Millisecond))
	s.last, s.longest = time.Now(), 0
}
