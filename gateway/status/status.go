// Package status publishes the gateway's retained status message (uplink
// contract: the status stream) at start, on every (re)connect, whenever a
// device changes state, and every interval. It is a part over small
// interfaces: the queues' stats, the device health registry, the drop
// counters, the certificates' days left, whether the uplink is connected
// and a publish function. It holds no pointer to the gateway.
package status

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/townlink/townlink/gateway/health"
	"github.com/townlink/townlink/uplink/badgerq"
	"github.com/townlink/townlink/uplink/wire"
)

// Queue is one stream's queue as the status sees it.
type Queue interface {
	Stats() badgerq.Stats
}

// Dropper counts records discarded on purpose, by reason.
type Dropper interface {
	Dropped() map[string]uint64
}

// Certs tells each certificate's days left (certs.Monitor).
type Certs interface {
	Days() map[string]int64
}

// Config is what a Reporter reads. Gateway, Version, Boot, Queues, Health,
// Connected and Publish are required.
type Config struct {
	Gateway, Version, Boot string
	Interval               time.Duration // between periodic publishes; default 60 s

	Queues    map[string]Queue // by stream name
	Health    health.Reporter  // every device's state
	Drops     Dropper          // nil: none reported
	Certs     Certs            // nil: none reported
	Connected func() bool      // whether the uplink is connected
	// Publish sends the encoded status retained on the status topic.
	Publish     func(ctx context.Context, payload []byte) error
	ClockSynced func() bool      // nil: never synced
	Now         func() time.Time // nil: time.Now
	// OnTick runs at each periodic, kicked or device-change publish
	// attempt, connected or not (e.g. to save the drop counters and check
	// the certificates); nil: nothing.
	OnTick func()
	// Restarts reports the gateway parts that stopped on their own and
	// were restarted, with how often; nil: none reported.
	Restarts func() map[string]uint64
	// Alarms reports the active alarms, alarm id → short text; nil: none.
	Alarms func() map[string]string
	// Signer signs the evidence chain head announced in the status (the
	// gateway's identity key); nil: the head is announced unsigned.
	Signer wire.Signer
	Logger *slog.Logger
}

// Reporter publishes the status message.
type Reporter struct {
	c     Config
	log   *slog.Logger
	kickc chan struct{}

	mu   sync.Mutex
	last map[string]health.State
}

// New returns a Reporter. It does no I/O.
func New(c Config) *Reporter {
	if c.Interval <= 0 {
		c.Interval = time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ClockSynced == nil {
		c.ClockSynced = func() bool { return false }
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reporter{c: c, log: log, kickc: make(chan struct{}, 1)}
}

// Kick asks for a publish soon (never blocks): after a (re)connect, a
// drop, anything the platform should see at once.
func (r *Reporter) Kick() {
	select {
	case r.kickc <- struct{}{}:
	default:
	}
}

// Snapshot is the status message now; state is wire.StateOnline or
// wire.StateOffline.
func (r *Reporter) Snapshot(state string) *wire.Status {
	now := r.c.Now()
	st := &wire.Status{
		V: wire.Version, GW: r.c.Gateway, State: state, TS: now.UnixMilli(),
		Version: r.c.Version, Boot: r.c.Boot,
		Backlog: map[string]uint64{}, Dropped: map[string]uint64{}, Devices: map[string]string{},
		Clock: wire.ClockUnsynced,
	}
	if r.c.ClockSynced() {
		st.Clock = wire.ClockSynced
	}
	var oldest time.Time
	st.LastSeq = make(map[string]uint64, len(r.c.Queues))
	for name, q := range r.c.Queues {
		qs := q.Stats()
		st.Backlog[name] = uint64(max(qs.Backlog, 0))
		st.LastSeq[name] = qs.LastSeq
		if name == wire.StreamEvidence {
			r.head(st, qs.LastSeq, qs.Seal)
		}
		if !qs.Oldest.IsZero() && (oldest.IsZero() || qs.Oldest.Before(oldest)) {
			oldest = qs.Oldest
		}
	}
	if !oldest.IsZero() {
		st.OldestUnsentMS = uint64(max(0, now.Sub(oldest).Milliseconds()))
	}
	if r.c.Drops != nil {
		maps.Copy(st.Dropped, r.c.Drops.Dropped())
	}
	if r.c.Health != nil {
		st.Devices = health.Strings(r.c.Health.States())
	}
	if r.c.Certs != nil {
		if d := r.c.Certs.Days(); len(d) > 0 {
			st.Certs = d
		}
	}
	if r.c.Alarms != nil {
		if m := r.c.Alarms(); len(m) > 0 {
			st.Alarms = m
		}
	}
	if r.c.Restarts != nil {
		if m := r.c.Restarts(); len(m) > 0 {
			st.Restarts = m
		}
	}
	return st
}

// head announces the evidence chain head (the hash of record seq), signed
// when there is a Signer, so that the platform detects a cut tail or a
// rolled-back store (docs/contract.md, "Status").
func (r *Reporter) head(st *wire.Status, seq uint64, head []byte) {
	if seq == 0 || len(head) != wire.HashSize {
		return
	}
	if r.c.Signer == nil {
		st.EvidenceHead = slices.Clone(head)
		return
	}
	if err := wire.SignHead(r.c.Signer, st, seq, head); err != nil {
		r.log.Error("evidence head not signed", "err", err)
		st.EvidenceHead = slices.Clone(head)
	}
}

// Encode is the encoded status message now.
func (r *Reporter) Encode(state string) ([]byte, error) {
	return wire.EncodeStatus(r.Snapshot(state))
}

// Publish encodes and publishes the status once; a failure is logged.
func (r *Reporter) Publish(ctx context.Context, state string) {
	b, err := r.Encode(state)
	if err != nil {
		r.log.Error("status not encoded", "err", err)
		return
	}
	if err := r.c.Publish(ctx, b); err != nil {
		r.log.Debug("status not published", "err", err)
	}
}

// changed reports whether a device changed state since the last call.
func (r *Reporter) changed() bool {
	if r.c.Health == nil {
		return false
	}
	devs := r.c.Health.States()
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := !maps.Equal(devs, r.last)
	r.last = devs
	return ch
}

// Run publishes "online" statuses until ctx ends: at once, every
// Interval, on Kick, and within a second of a device changing state. It
// skips publishing while the uplink is not connected (the broker keeps
// the last retained one; a reconnect kicks).
func (r *Reporter) Run(ctx context.Context) error {
	tick := time.NewTicker(r.c.Interval)
	defer tick.Stop()
	check := time.NewTicker(time.Second)
	defer check.Stop()
	r.changed()
	r.Kick()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-r.kickc:
		case <-check.C:
			if !r.changed() {
				continue
			}
		}
		if r.c.OnTick != nil {
			r.c.OnTick()
		}
		if !r.c.Connected() {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r.Publish(pctx, wire.StateOnline)
		cancel()
	}
}
