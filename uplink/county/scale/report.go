package scale

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/townlink/townlink/uplink/county/pgstore"
)

// Report is what a run measured; docs/county.md explains each number.
type Report struct {
	Config       Config
	ClusterReady time.Duration // 3 nodes started → JetStream answering on each
	RawQoS1      float64       // the cluster's own QoS 1 rate, msgs/s of 200 B, same run

	Start, GenerateEnd, Drained time.Time
	Remaining                   int64 // records still queued when the drain timed out

	KilledNode                string
	NodeKilled, NodeRestarted time.Time
	KilledWorker              string
	WorkerKilled              time.Time
	WorkerRestarted           time.Time

	OutageStart, OutageEnd time.Time
	OutageBacklogBefore    int64 // all outboxes just before the cut
	OutageBacklog          int64 // all outboxes when the network came back

	Appended, AppendErrors, Dropped int64  // records the gateways appended; refused appends; discarded by quota
	Committed                       uint64 // seqs the gateways committed (their queues' last seqs)
	Rows, Covered, Queued, Lost     uint64 // of those: stored as rows; covered by gap records; still in an outbox; none of these
	LostExamples                    []string
	Summary                         *pgstore.Summary

	// wire.Audit over the stored evidence, with the gateways' keys, against
	// their last statuses: chains whole from seq 1, signatures checked.
	EvidenceStreams, EvidenceOK int
	EvidenceProblems            []string

	SteadyLatency, AllLatency []time.Duration // p50, p99 from reading (ts) to committed row
	SteadyN, AllN             int64

	MaxBacklog        int64 // all outboxes together, sampled every second
	MaxGatewayBacklog int64 // the fullest single outbox
	PeakInsertRate    float64
	DrainTime         time.Duration // outage end → outboxes back to their pre-outage level
	DrainRate         float64       // records/s drained net over DrainTime

	Reconnected        int             // gateways that reconnected after the outage
	Reconnect          []time.Duration // after the outage's end: first, p50, p90, last reconnect
	PeakConnectsPerSec int             // most reconnects within one second after the outage
	StallNode          time.Duration   // longest time a gateway got no ack around the node kill
	StallWorker        time.Duration   // … around the worker kill
	StallOutage        time.Duration   // … over the outage (the outage itself)
	StallOther         time.Duration   // … at any other time
}

// sampler follows the outboxes and the store's insert rate during the run.
type sampler struct {
	e       *env
	samples []sample
	done    chan struct{} // closed when run returns
}

type sample struct {
	at       time.Time
	backlog  int64
	inserted int64
}

func newSampler(e *env) *sampler { return &sampler{e: e, done: make(chan struct{})} }

func (s *sampler) run(ctx context.Context) {
	defer close(s.done)
	conn, err := pgx.Connect(ctx, s.e.pg.DSN)
	if err != nil {
		return
	}
	defer conn.Close(context.Background())
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			sm := sample{at: now}
			for _, g := range s.e.gws {
				b := g.backlog()
				sm.backlog += b
				if b > s.e.rep.MaxGatewayBacklog {
					s.e.rep.MaxGatewayBacklog = b
				}
			}
			_ = conn.QueryRow(ctx, "SELECT coalesce(sum(inserted), 0) FROM ingest_counters").Scan(&sm.inserted)
			s.samples = append(s.samples, sm)
		}
	}
}

// finish waits for run to return (its ctx must be done) and derives the
// peaks and the drain from the samples.
func (s *sampler) finish() {
	<-s.done
	r := s.e.rep
	const window = 5
	for i, sm := range s.samples {
		r.MaxBacklog = max(r.MaxBacklog, sm.backlog)
		if i >= window {
			p := s.samples[i-window]
			r.PeakInsertRate = max(r.PeakInsertRate, float64(sm.inserted-p.inserted)/sm.at.Sub(p.at).Seconds())
		}
	}
	if r.OutageEnd.IsZero() {
		return
	}
	level := max(2*r.OutageBacklogBefore, 100)
	for _, sm := range s.samples {
		if sm.at.After(r.OutageEnd) && sm.backlog <= level {
			r.DrainTime = sm.at.Sub(r.OutageEnd)
			r.DrainRate = float64(r.OutageBacklog-sm.backlog) / r.DrainTime.Seconds()
			return
		}
	}
}

// collectGateways gathers the reconnects after the outage and the stalls.
func (e *env) collectGateways() {
	r := e.rep
	var after []time.Duration
	for _, g := range e.gws {
		g.mu.Lock()
		if !r.OutageEnd.IsZero() {
			for _, c := range g.connects {
				if c.After(r.OutageEnd) {
					after = append(after, c.Sub(r.OutageEnd))
					break
				}
			}
		}
		for _, s := range g.stalls {
			start := s.end.Add(-s.d)
			switch {
			case overlaps(start, s.end, r.OutageStart, r.OutageEnd):
				r.StallOutage = max(r.StallOutage, s.d)
			case overlaps(start, s.end, r.NodeKilled, r.NodeRestarted.Add(30*time.Second)):
				r.StallNode = max(r.StallNode, s.d)
			case overlaps(start, s.end, r.WorkerKilled, r.WorkerRestarted.Add(30*time.Second)):
				r.StallWorker = max(r.StallWorker, s.d)
			default:
				r.StallOther = max(r.StallOther, s.d)
			}
		}
		g.mu.Unlock()
	}
	sort.Slice(after, func(i, j int) bool { return after[i] < after[j] })
	r.Reconnected = len(after)
	if len(after) > 0 {
		q := func(p float64) time.Duration { return after[int(p*float64(len(after)-1))] }
		r.Reconnect = []time.Duration{after[0], q(0.5), q(0.9), after[len(after)-1]}
		per := map[int64]int{}
		for _, d := range after {
			per[int64(d/time.Second)]++
		}
		for _, n := range per {
			r.PeakConnectsPerSec = max(r.PeakConnectsPerSec, n)
		}
	}
}

func overlaps(a0, a1, b0, b1 time.Time) bool {
	return !b0.IsZero() && a0.Before(b1) && b0.Before(a1)
}

func gatewayPub(k []byte) ed25519.PublicKey {
	return ed25519.PrivateKey(k).Public().(ed25519.PublicKey)
}

// String is the report make scale prints.
func (r *Report) String() string {
	var b strings.Builder
	c := r.Config
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	rate := float64(c.Gateways*c.Devices) / c.Interval.Seconds()
	p("county scale run: %d gateways × %d devices, a reading per device every %v (%.0f records/s), %d ingest workers, nats-server %s R3",
		c.Gateways, c.Devices, c.Interval, rate, c.Workers, "v2.15.3")
	p("  cluster ready in            %v", r.ClusterReady.Round(time.Millisecond))
	p("  raw QoS 1 (200 B, same run) %.0f msgs/s", r.RawQoS1)
	p("records")
	p("  appended by the gateways    %d (refused appends %d, discarded by quota %d)", r.Appended, r.AppendErrors, r.Dropped)
	p("  committed seqs              %d", r.Committed)
	p("  rows in PostgreSQL          %d", r.Rows)
	p("  covered by gap records      %d", r.Covered)
	p("  LOST                        %d %s", r.Lost, strings.Join(r.LostExamples, "; "))
	if r.Remaining > 0 || r.Queued > 0 {
		p("  still in the outboxes       %d records at the end, %d of them not yet in PostgreSQL (not lost: the gateways still hold them)", r.Remaining, r.Queued)
	}
	if s := r.Summary; s != nil {
		p("  duplicates removed          %d (conflicts %d, audit problems %v, chain breaks %d)", s.Duplicates, s.Conflicts, s.Problems, s.ChainBreaks)
		p("  ingest commits              %d", s.Commits)
	}
	p("  evidence audit (wire.Audit) %d of %d gateways' chains whole, signed and matching their status %s",
		r.EvidenceOK, r.EvidenceStreams, strings.Join(r.EvidenceProblems, "; "))
	p("throughput")
	run := r.GenerateEnd.Sub(r.Start)
	if !r.Drained.IsZero() {
		run = r.Drained.Sub(r.Start)
	}
	p("  mean into PostgreSQL        %.0f records/s over %v", float64(r.Rows)/run.Seconds(), run.Round(time.Second))
	p("  peak into PostgreSQL (5 s)  %.0f records/s", r.PeakInsertRate)
	p("latency, reading → committed row")
	if len(r.SteadyLatency) == 2 {
		p("  steady (before any kill)    p50 %v  p99 %v  (%d records)", r.SteadyLatency[0].Round(time.Millisecond), r.SteadyLatency[1].Round(time.Millisecond), r.SteadyN)
	}
	if len(r.AllLatency) == 2 {
		p("  whole run                   p50 %v  p99 %v  (%d records)", r.AllLatency[0].Round(time.Millisecond), r.AllLatency[1].Round(time.Millisecond), r.AllN)
	}
	p("failures")
	p("  kill -9 stream leader       %s at %v, restarted at %v; longest gateway stall around it %v",
		r.KilledNode, off(r.Start, r.NodeKilled), off(r.Start, r.NodeRestarted), r.StallNode.Round(time.Millisecond))
	p("  kill -9 ingest worker       %s at %v, restarted at %v; longest stall around it %v",
		r.KilledWorker, off(r.Start, r.WorkerKilled), off(r.Start, r.WorkerRestarted), r.StallWorker.Round(time.Millisecond))
	if !r.OutageStart.IsZero() {
		p("  county outage               %v → %v (%v); outboxes %d before, %d at its end",
			off(r.Start, r.OutageStart), off(r.Start, r.OutageEnd), r.OutageEnd.Sub(r.OutageStart).Round(time.Second), r.OutageBacklogBefore, r.OutageBacklog)
		if len(r.Reconnect) == 4 {
			p("  reconnect after it          %d gateways; first %v, p50 %v, p90 %v, last %v; at most %d in one second",
				r.Reconnected, r.Reconnect[0].Round(time.Millisecond), r.Reconnect[1].Round(time.Millisecond), r.Reconnect[2].Round(time.Millisecond), r.Reconnect[3].Round(time.Millisecond), r.PeakConnectsPerSec)
		}
		p("  drain                       %v back to the pre-outage level, %.0f records/s net", r.DrainTime.Round(time.Second), r.DrainRate)
		p("  longest stall in the outage %v", r.StallOutage.Round(time.Millisecond))
	}
	p("  longest stall otherwise     %v", r.StallOther.Round(time.Millisecond))
	p("outbox")
	p("  peak, all gateways          %d records; fullest gateway %d", r.MaxBacklog, r.MaxGatewayBacklog)
	return b.String()
}

func off(start, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Sub(start).Round(100 * time.Millisecond).String()
}
