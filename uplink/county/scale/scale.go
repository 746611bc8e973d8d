// Package scale is the county load harness (make scale, and its short
// version in go test): a 3-node NATS JetStream cluster with its MQTT
// listener (the pinned nats-server, built from the module proxy), a real
// PostgreSQL, townlink-county ingest workers as separate processes, and
// hundreds of simulated gateways built from the real uplink code (each its
// own Badger queue, forwarders and MQTT client, "ack: platform") reading at
// a steady rate. During the run it kill -9s the node leading the MQTT
// message stream and one ingest worker, restarts them, and cuts the county
// network (every gateway buffering) before letting every gateway back at
// once. It then holds every seq the gateways committed against PostgreSQL.
//
// docs/county.md explains each number of the Report.
package scale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/townlink/townlink/uplink/badgerq"
	"github.com/townlink/townlink/uplink/county/natsin"
	"github.com/townlink/townlink/uplink/county/natstest"
	"github.com/townlink/townlink/uplink/county/pgstore"
	"github.com/townlink/townlink/uplink/county/pgstore/pgtest"
	"github.com/townlink/townlink/uplink/wire"
)

// ErrConfig reports an unusable Config.
var ErrConfig = errors.New("scale: invalid configuration")

// Config sizes and times a run. Offsets (…At) count from the gateways' start.
type Config struct {
	Dir       string // work directory (required)
	CountyBin string // the townlink-county binary (required)
	NATSBin   string // "" builds natstest.Version into the user cache

	County    string // default 320583
	Townships int    // default 20
	Gateways  int
	Devices   int           // per gateway
	Interval  time.Duration // each device reads this often
	Workers   int           // ingest processes; default 2
	MaxDelay  time.Duration // forwarder: a live batch waits this long to fill
	DrainRate float64       // records/s of backlog per gateway (telemetry+events)

	BackoffMin, BackoffMax time.Duration // gateways' reconnect backoff
	AckWait                time.Duration // JetStream redelivers a dead worker's messages after this
	// AckTimeout: a gateway sends again what the platform has not
	// acknowledged this long after publishing it (uplink.Forwarder).
	// Shorter than the platform's lag under load, it multiplies the load.
	AckTimeout time.Duration

	Duration                    time.Duration // how long the gateways read
	NodeKillAt, NodeDownFor     time.Duration
	WorkerKillAt, WorkerDownFor time.Duration
	OutageAt, OutageFor         time.Duration // OutageFor 0: no outage
	DrainTimeout                time.Duration // after Duration, for the outboxes to empty
	RawFor                      time.Duration // raw QoS 1 measurement; 0 skips it

	Log io.Writer // progress lines; nil discards
}

func (c *Config) defaults() error {
	if c.Dir == "" || c.CountyBin == "" || c.Gateways <= 0 || c.Devices <= 0 || c.Interval <= 0 || c.Duration <= 0 {
		return fmt.Errorf("%w: Dir, CountyBin, Gateways, Devices, Interval and Duration are required", ErrConfig)
	}
	if c.County == "" {
		c.County = "320583"
	}
	if c.Townships <= 0 {
		c.Townships = 20
	}
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 30 * time.Second
	}
	if c.AckWait <= 0 {
		c.AckWait = 10 * time.Second
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = 2 * time.Minute
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 5 * time.Minute
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return nil
}

// env is everything a run starts, for the phases to use and Run to stop.
type env struct {
	cfg     *Config
	pg      *pgtest.Server
	cluster *natstest.Cluster
	gates   []*gate
	workers []*worker
	gws     []*gateway
	start   time.Time
	rep     *Report
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.cfg.Log, "[%6.1fs] %s\n", time.Since(e.start).Seconds(), fmt.Sprintf(format, args...))
}

// Run runs the whole scenario and returns its report. The report is
// returned (with an error) also when the run failed half-way.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	raiseFileLimit()
	e := &env{cfg: &cfg, start: time.Now(), rep: &Report{Config: cfg}}
	defer e.stop()
	if err := e.startInfra(ctx); err != nil {
		return e.rep, err
	}
	if err := e.startGateways(ctx); err != nil {
		return e.rep, err
	}
	err := e.scenario(ctx)
	if aerr := e.account(ctx); err == nil {
		err = aerr
	}
	return e.rep, err
}

func (e *env) startInfra(ctx context.Context) error {
	cfg := e.cfg
	for _, d := range []string{"pg", "nats", "gw"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return err
		}
	}
	var err error
	if e.pg, err = pgtest.StartDir(filepath.Join(cfg.Dir, "pg")); err != nil {
		return err
	}
	bin := cfg.NATSBin
	if bin == "" {
		if bin, err = natstest.Build(""); err != nil {
			return err
		}
	}
	t0 := time.Now()
	if e.cluster, err = natstest.StartDir(filepath.Join(cfg.Dir, "nats"), bin, 3); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := e.cluster.WaitReady(rctx); err != nil {
		return err
	}
	e.rep.ClusterReady = time.Since(t0)
	e.logf("postgres %s, nats cluster %v ready in %v", e.pg.DSN, e.cluster.ClientURLs(), e.rep.ClusterReady.Round(time.Millisecond))
	for _, n := range e.cluster.Nodes {
		g, err := newGate(n.MQTTAddr())
		if err != nil {
			return err
		}
		e.gates = append(e.gates, g)
	}
	return e.startWorkers(ctx)
}

func (e *env) startWorkers(ctx context.Context) error {
	cfg := e.cfg
	keys := filepath.Join(cfg.Dir, "keys.txt")
	if err := writeKeys(keys, cfg.Gateways); err != nil {
		return err
	}
	var mqtt []string
	mqtt = append(mqtt, e.cluster.MQTTURLs()...)
	for i := range cfg.Workers {
		name := fmt.Sprintf("w%d", i+1)
		w := &worker{name: name, bin: cfg.CountyBin, logf: logPath(cfg.Dir, "worker-"+name), args: []string{
			"ingest", "-pg", e.pg.DSN, "-nats", join(e.cluster.ClientURLs()), "-mqtt", join(rotate(mqtt, i)),
			"-ack", "platform", "-keys", keys, "-worker", name, "-ack-wait", cfg.AckWait.String(),
		}}
		if err := w.start(); err != nil {
			return err
		}
		e.workers = append(e.workers, w)
	}
	nc, js, err := natsJS(e.cluster.ClientURLs())
	if err != nil {
		return err
	}
	defer nc.Close()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := waitConsumer(wctx, js, natsin.DefaultStream, natsin.DefaultDurable); err != nil {
		return err
	}
	e.logf("%d ingest workers up, durable consumer %s on %s", cfg.Workers, natsin.DefaultDurable, natsin.DefaultStream)
	if cfg.RawFor > 0 {
		if e.rep.RawQoS1, err = rawQoS1(ctx, js, e.cluster.MQTTURLs(), 8, 32, cfg.RawFor); err != nil {
			return fmt.Errorf("raw QoS 1 measurement: %w", err)
		}
		e.logf("raw QoS 1 through the cluster: %.0f msgs/s of 200 B", e.rep.RawQoS1)
	}
	return nil
}

func (e *env) startGateways(ctx context.Context) error {
	var urls []string
	for _, g := range e.gates {
		urls = append(urls, g.url())
	}
	for i := range e.cfg.Gateways {
		g, err := newGateway(filepath.Join(e.cfg.Dir, "gw"), i, e.cfg, urls, e.cfg.DrainRate)
		if err != nil {
			return fmt.Errorf("gateway %d: %w", i, err)
		}
		e.gws = append(e.gws, g)
	}
	e.logf("%d gateways × %d devices opened (Badger low-memory profile each)", len(e.gws), e.cfg.Devices)
	return nil
}

// scenario runs the gateways through the timeline and waits for their
// outboxes to empty.
func (e *env) scenario(ctx context.Context) error {
	cfg := e.cfg
	gwCtx, stopGW := context.WithCancel(ctx)
	var fwdWG sync.WaitGroup
	defer func() { stopGW(); fwdWG.Wait() }()
	e.start = time.Now()
	e.rep.Start = e.start
	for _, g := range e.gws {
		if err := g.run(gwCtx, &fwdWG); err != nil {
			return err
		}
	}
	genCtx, stopGen := context.WithTimeout(gwCtx, cfg.Duration)
	defer stopGen()
	var genWG sync.WaitGroup
	for i, g := range e.gws {
		genWG.Add(1)
		go func() {
			defer genWG.Done()
			// Gateways boot over the first seconds, not all at once.
			select {
			case <-time.After(time.Duration(i) * time.Second * 5 / time.Duration(len(e.gws))):
			case <-genCtx.Done():
				return
			}
			g.generate(genCtx, rand.New(rand.NewPCG(uint64(i), 7)))
		}()
	}
	samp := newSampler(e)
	sctx, stopSamp := context.WithCancel(ctx)
	go samp.run(sctx)
	defer stopSamp()
	tlErr := e.timeline(genCtx)
	genWG.Wait()
	e.rep.GenerateEnd = time.Now()
	e.logf("gateways stopped reading; waiting for the outboxes to empty")
	drained := e.waitDrained(ctx)
	stopSamp()
	samp.finish()
	stopGW()
	fwdWG.Wait()
	if !drained {
		e.logf("outboxes not empty after %v: %d records still queued", cfg.DrainTimeout, e.backlog())
	}
	return tlErr
}

func (e *env) waitDrained(ctx context.Context) bool {
	deadline := time.Now().Add(e.cfg.DrainTimeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if e.backlog() == 0 {
			e.rep.Drained = time.Now()
			return true
		}
		time.Sleep(500 * time.Millisecond)
	}
	e.rep.Remaining = e.backlog()
	return false
}

func (e *env) backlog() int64 {
	var n int64
	for _, g := range e.gws {
		n += g.backlog()
	}
	return n
}

// timeline kills and restarts at the configured offsets, in time order.
func (e *env) timeline(ctx context.Context) error {
	cfg := e.cfg
	type step struct {
		at time.Duration
		do func() error
	}
	steps := []step{
		{cfg.NodeKillAt, e.killLeader},
		{cfg.NodeKillAt + cfg.NodeDownFor, e.restartNode},
		{cfg.WorkerKillAt, e.killWorker},
		{cfg.WorkerKillAt + cfg.WorkerDownFor, e.restartWorker},
	}
	if cfg.OutageFor > 0 {
		steps = append(steps, step{cfg.OutageAt, e.outageStart}, step{cfg.OutageAt + cfg.OutageFor, e.outageEnd})
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].at < steps[j].at })
	for _, s := range steps {
		select {
		case <-ctx.Done():
			return fmt.Errorf("scale: the run ended before the step at %v: make Duration longer", s.at)
		case <-time.After(time.Until(e.start.Add(s.at))):
		}
		if err := s.do(); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}

func (e *env) killLeader() error {
	nc, js, err := natsJS(e.cluster.ClientURLs())
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := e.cluster.StreamLeader(ctx, js, natsin.DefaultStream)
	if err != nil {
		return err
	}
	n.Kill()
	e.rep.NodeKilled, e.rep.KilledNode = time.Now(), n.Name
	e.logf("kill -9 %s, leader of %s", n.Name, natsin.DefaultStream)
	return nil
}

func (e *env) restartNode() error {
	n := e.cluster.Node(e.rep.KilledNode)
	if err := n.Start(); err != nil {
		return err
	}
	e.rep.NodeRestarted = time.Now()
	e.logf("%s restarted", n.Name)
	return nil
}

func (e *env) killWorker() error {
	w := e.workers[0]
	w.kill()
	e.rep.WorkerKilled, e.rep.KilledWorker = time.Now(), w.name
	e.logf("kill -9 ingest worker %s", w.name)
	return nil
}

func (e *env) restartWorker() error {
	if err := e.workers[0].start(); err != nil {
		return err
	}
	e.rep.WorkerRestarted = time.Now()
	e.logf("ingest worker %s restarted", e.workers[0].name)
	return nil
}

func (e *env) outageStart() error {
	e.rep.OutageBacklogBefore = e.backlog()
	for _, g := range e.gates {
		g.set(false)
	}
	e.rep.OutageStart = time.Now()
	e.logf("county network cut: every gateway buffers")
	return nil
}

func (e *env) outageEnd() error {
	e.rep.OutageBacklog = e.backlog()
	for _, g := range e.gates {
		g.set(true)
	}
	e.rep.OutageEnd = time.Now()
	e.logf("county network back: %d records buffered", e.rep.OutageBacklog)
	return nil
}

func (e *env) stop() {
	for _, g := range e.gws {
		g.close()
	}
	for _, w := range e.workers {
		w.kill()
	}
	for _, g := range e.gates {
		g.close()
	}
	if e.cluster != nil {
		e.cluster.Stop()
	}
	if e.pg != nil {
		_ = e.pg.Stop()
	}
}

// account holds every seq the gateways committed against PostgreSQL.
func (e *env) account(ctx context.Context) error {
	if e.pg == nil || len(e.gws) == 0 {
		return nil
	}
	store, err := pgstore.Open(ctx, e.pg.DSN, "harness", nil)
	if err != nil {
		return err
	}
	defer store.Close()
	r := e.rep
	for _, g := range e.gws {
		r.Appended += g.appended.Load()
		r.AppendErrors += g.appendErr.Load()
		for reason, n := range g.db.Dropped() {
			r.Dropped += int64(n)
			_ = reason
		}
		for _, s := range streams {
			a, err := store.Account(ctx, g.id, s, g.queues[s].LastSeq())
			if err != nil {
				return err
			}
			r.Committed += a.Committed
			r.Rows += a.Rows
			r.Covered += a.Covered
			if len(a.Missing) == 0 {
				continue
			}
			// Not in PostgreSQL: lost, unless still in the outbox.
			queued, err := outbox(g.queues[s])
			if err != nil {
				return err
			}
			var lost []uint64
			for _, q := range a.Missing {
				if queued[q] {
					r.Queued++
				} else {
					lost = append(lost, q)
				}
			}
			r.Lost += uint64(len(lost))
			if len(lost) > 0 && len(r.LostExamples) < 10 {
				r.LostExamples = append(r.LostExamples, fmt.Sprintf("%s/%s: %d lost, first %d", g.id, s, len(lost), lost[0]))
			}
		}
	}
	if r.Summary, err = store.Summary(ctx); err != nil {
		return err
	}
	if err := e.auditEvidence(ctx, store); err != nil {
		return err
	}
	first := min(e.cfg.NodeKillAt, e.cfg.WorkerKillAt)
	if e.cfg.OutageFor > 0 {
		first = min(first, e.cfg.OutageAt)
	}
	// Steady: read in the second half of the time before the first failure
	// (the gateways have booted and connected), and long enough before it
	// not to be held up by it.
	steadyFrom, steadyTo := e.start.Add(first/2), e.start.Add(first-min(15*time.Second, first/4))
	q := []float64{0.5, 0.99}
	if r.SteadyLatency, r.SteadyN, err = store.Latency(ctx, steadyFrom, steadyTo, q...); err != nil {
		return err
	}
	if r.AllLatency, r.AllN, err = store.Latency(ctx, e.start, time.Now(), q...); err != nil {
		return err
	}
	e.collectGateways()
	if r.Lost > 0 {
		return fmt.Errorf("scale: %d committed records lost: %v", r.Lost, r.LostExamples)
	}
	return nil
}

func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

func rotate(s []string, i int) []string {
	if len(s) == 0 {
		return s
	}
	i %= len(s)
	return append(append([]string(nil), s[i:]...), s[:i]...)
}

func formatKey(k []byte) string {
	return wire.FormatPublicKey(gatewayPub(k))
}

// auditEvidence runs wire.Audit over the stored evidence chains with every
// gateway's key, against their last statuses.
func (e *env) auditEvidence(ctx context.Context, store *pgstore.Store) error {
	keys := map[string]wire.Verifier{}
	for i, g := range e.gws {
		keys[g.id] = wire.Ed25519Verifier(gatewayPub(gatewayKey(i)))
	}
	reps, err := store.AuditEvidence(ctx, keys)
	if err != nil {
		return err
	}
	r := e.rep
	for _, sr := range reps {
		r.EvidenceStreams++
		if sr.OK() && sr.SigChecked {
			r.EvidenceOK++
		} else if len(r.EvidenceProblems) < 10 {
			r.EvidenceProblems = append(r.EvidenceProblems, fmt.Sprintf("%s: ok %v, signatures checked %v, missing %v, forged %v, chain %v",
				sr.GW, sr.OK(), sr.SigChecked, sr.Missing, sr.Forged, sr.ChainErr))
		}
	}
	return nil
}

// outbox returns the seqs a queue still holds (not acknowledged).
func outbox(q *badgerq.Queue) (map[uint64]bool, error) {
	n := q.Stats().Backlog
	out := map[uint64]bool{}
	if n == 0 {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	es, err := q.Peek(ctx, 0, int(n))
	if err != nil {
		return nil, err
	}
	for _, e := range es {
		out[e.Seq] = true
	}
	return out, nil
}
