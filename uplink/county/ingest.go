package county

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/townlink/townlink/uplink/wire"
)

// DefaultAckTimeout bounds one platform acknowledgement's publish.
const DefaultAckTimeout = 10 * time.Second

// Config configures an Ingest.
type Config struct {
	Store Store // required
	// Acks publishes "ack: platform" acknowledgements; nil means the
	// gateways run "ack: broker" and nothing is acknowledged.
	Acks Publisher
	// Keys are the gateways' registered evidence keys (wire.ParsePublicKey
	// → wire.Ed25519Verifier); the key under "" is used for gateways
	// without their own. Evidence of a gateway without a key is stored with
	// its chain checked but its signatures not (sig_checked false).
	Keys       map[string]wire.Verifier
	AckTimeout time.Duration // default DefaultAckTimeout
	Logger     *slog.Logger  // nil: discard
}

// Ingest decodes, checks and stores messages. It is safe for concurrent use
// by several goroutines (each with its own messages).
type Ingest struct {
	cfg Config
	log *slog.Logger
}

// New checks cfg and returns an Ingest. It does no I/O.
func New(cfg Config) (*Ingest, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: no store", ErrConfig)
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = DefaultAckTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Ingest{cfg: cfg, log: log}, nil
}

// Decode turns messages into a Commit: batches decoded by topic identity,
// statuses, and a Problem for every message that could not be accepted.
// Messages on cmd, cmd-result and ack are not the ingest's and are skipped.
func (in *Ingest) Decode(msgs []Message) *Commit {
	c := &Commit{}
	for _, m := range msgs {
		in.decodeOne(c, m)
	}
	return c
}

func (in *Ingest) decodeOne(c *Commit, m Message) {
	county, township, gw, stream, err := wire.ParseTopic(m.Topic)
	if err != nil {
		c.Problems = append(c.Problems, Problem{Topic: m.Topic, Kind: ProblemTopic, Detail: err.Error()})
		return
	}
	switch {
	case stream == wire.StreamStatus:
		s, err := wire.DecodeStatusTopic(m.Topic, m.Payload)
		if err != nil {
			c.Problems = append(c.Problems, decodeProblem(m, gw, stream, err))
			return
		}
		c.Statuses = append(c.Statuses, Status{County: county, Township: township, Status: s})
	case wire.IsRecordStream(stream):
		b, err := wire.DecodeTopic(m.Topic, m.Payload)
		if err != nil {
			c.Problems = append(c.Problems, decodeProblem(m, gw, stream, err))
			return
		}
		cb := Batch{County: county, Township: township, Batch: b, Received: m.Received}
		if stream == wire.StreamEvidence && !in.checkChain(c, &cb, m.Topic) {
			return
		}
		c.Batches = append(c.Batches, cb)
	}
}

// checkChain verifies the hashes, links and (with the gateway's key) the
// signatures inside one evidence batch. Links across batches are the
// store's to check (they may arrive in any order). A record that breaks
// the chain and the records after it are audited and quarantined, not
// stored as rows: stored, an altered copy would be acknowledged (the
// gateway would delete the genuine record) and would make the genuine copy
// a conflict. It reports whether records are left to store.
func (in *Ingest) checkChain(c *Commit, b *Batch, topic string) bool {
	key := in.cfg.Keys[b.GW]
	if key == nil {
		key = in.cfg.Keys[""]
	}
	var prev []byte
	if len(b.Recs) > 0 && b.Recs[0].Seq != 1 {
		prev = b.Recs[0].Prev
	}
	err := wire.VerifyChainKey(b.Recs, prev, key)
	b.SigChecked = key != nil
	if err == nil {
		return true
	}
	p := Problem{Topic: topic, GW: b.GW, Stream: b.Stream, Kind: ProblemChain, Detail: err.Error() + "; not stored"}
	keep := 0
	var ce *wire.ChainError
	if errors.As(err, &ce) {
		p.Seq = ce.Seq
		keep = ce.Index
	}
	if keep < len(b.Recs) {
		p.Detail = fmt.Sprintf("%v; records %d..%d not stored", err, b.Recs[keep].Seq, b.Recs[len(b.Recs)-1].Seq)
	}
	c.Problems = append(c.Problems, p)
	refused := *b.Batch
	refused.Recs = b.Recs[keep:]
	c.Quarantined = append(c.Quarantined, Batch{County: b.County, Township: b.Township, Batch: &refused, Received: b.Received})
	if keep == 0 {
		return false
	}
	trimmed := *b.Batch
	trimmed.Recs = b.Recs[:keep]
	b.Batch = &trimmed
	return true
}

func decodeProblem(m Message, gw, stream string, err error) Problem {
	kind := ProblemMalformed
	if errors.Is(err, wire.ErrIdentity) {
		kind = ProblemIdentity
	}
	return Problem{Topic: m.Topic, GW: gw, Stream: stream, Kind: kind, Detail: err.Error(), Payload: m.Payload}
}

// Handle decodes msgs, commits them in one transaction of the Store and then,
// with Config.Acks, publishes every touched stream's progress to its
// gateway. It returns nil once the commit succeeded: the caller may then
// acknowledge msgs to the broker. A message that cannot be accepted is
// audited and counts as handled (sending it again would not help). A failed
// acknowledgement publish is logged, not returned: the gateway sends the
// records again after its ack timeout, and the duplicates are acknowledged.
func (in *Ingest) Handle(ctx context.Context, msgs []Message) (*Result, error) {
	c := in.Decode(msgs)
	res, err := in.cfg.Store.Commit(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStore, err)
	}
	if in.cfg.Acks != nil {
		in.ack(ctx, res.Progress)
	}
	return res, nil
}

// ack publishes {stream, upto} for each progress, a few at a time.
func (in *Ingest) ack(ctx context.Context, ps []Progress) {
	const parallel = 64
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, p := range ps {
		if p.Upto == 0 {
			continue
		}
		payload, err := wire.EncodeAck(&wire.PlatformAck{Stream: p.Stream, Upto: p.Upto})
		if err != nil {
			in.log.Error("encoding a platform ack", "gw", p.GW, "stream", p.Stream, "err", err)
			continue
		}
		topic := wire.Topic(p.County, p.Township, p.GW, wire.StreamAck)
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			actx, cancel := context.WithTimeout(ctx, in.cfg.AckTimeout)
			defer cancel()
			if err := in.cfg.Acks.Publish(actx, topic, payload); err != nil {
				in.log.Warn("platform ack not published; the gateway will resend", "topic", topic, "upto", p.Upto, "err", err)
			}
		}()
	}
	wg.Wait()
}
