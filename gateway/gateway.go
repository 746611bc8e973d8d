// Package gateway wires Townlink together: it is the one place that knows
// both the drivers and the uplink, and the only one that opens real serial
// ports, disks and sockets.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/bus"
	"github.com/townlink/townlink/gateway/certs"
	"github.com/townlink/townlink/gateway/clock"
	"github.com/townlink/townlink/gateway/commands"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/fieldbroker"
	"github.com/townlink/townlink/gateway/fieldin"
	"github.com/townlink/townlink/gateway/health"
	"github.com/townlink/townlink/gateway/identity"
	"github.com/townlink/townlink/gateway/localapi"
	"github.com/townlink/townlink/gateway/metrics"
	"github.com/townlink/townlink/gateway/pipeline"
	"github.com/townlink/townlink/gateway/recent"
	"github.com/townlink/townlink/gateway/rules"
	"github.com/townlink/townlink/gateway/status"
	"github.com/townlink/townlink/gateway/supervise"
	"github.com/townlink/townlink/gateway/web"
	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/badgerq"
	"github.com/townlink/townlink/uplink/mqttpub"
	"github.com/townlink/townlink/uplink/wire"
)

// Version is the gateway's version, reported in its status.
var Version = "0.1.0-dev"

// streams are the queued uplink streams, by driver class.
var streams = []drivers.Class{drivers.Telemetry, drivers.Event, drivers.Alarm, drivers.Evidence}

// Gateway is one running Townlink gateway.
type Gateway struct {
	cfg  *config.Config
	log  *slog.Logger
	boot string
	key  *identity.Key

	db      *badgerq.DB
	queues  map[drivers.Class]*badgerq.Queue
	client  *mqttpub.Client
	pipe    *pipeline.Pipeline
	lines   []*bus.Line
	sources []source
	health  *health.Registry
	drops   *status.Drops
	certs   *certs.Monitor
	status  *status.Reporter
	metrics *metrics.Metrics
	parts   *supervise.Supervisor

	field       map[string]fieldin.Device // recorders and kiosks by device id
	ingest      *fieldin.Ingest
	fieldDevs   []fieldbroker.Device
	fieldBroker atomic.Pointer[fieldbroker.Broker] // set by Run once listening
	fwds        map[string]*uplink.Forwarder       // by stream
	cmd         *commands.Service                  // the platform's commands
	cmdResults  *badgerq.Queue                     // their answers (cmd-result)

	// The technician's side (local.go).
	readers map[string]commands.Device // the polled devices, for read now
	recent  *recent.Store              // the last hour of every point
	local   *localapi.Service          // the control socket's answers
	web     *web.Server                // the local page; nil when web.listen is empty
	alarms  func() []localapi.Alarm    // the active alarms (rules engine); nil: none
	rules   *rules.Engine              // early warning (rules.go)
}

type source struct {
	id  string
	src drivers.Source
}

// ErrStart reports that the gateway cannot start at all.
var ErrStart = errors.New("gateway: cannot start")

// New builds a gateway from a validated config. It opens the store (the
// only start-up step that must succeed) but no serial port or socket.
func New(cfg *config.Config, log *slog.Logger) (*Gateway, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := CheckSecrets(cfg); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStart, err)
	}
	g := &Gateway{cfg: cfg, log: log, boot: bootID(), parts: supervise.New(log.With("part", "supervisor"), supervise.Options{})}
	dir := filepath.Join(cfg.Gateway.DataDir, "queue")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("%w: data_dir %s: %v (create it and give the townlink user write access)", ErrStart, cfg.Gateway.DataDir, err)
	}
	opts := badgerq.Options{Dir: dir, Logger: log.With("part", "store")}
	if cfg.Store.Profile == config.ProfileDefault {
		opts.Profile = badgerq.BadgerDefault()
	}
	db, err := badgerq.Open(opts)
	if err != nil {
		hint := ""
		if strings.Contains(err.Error(), "Cannot acquire directory lock") { // Badger flattens the cause to text
			hint = " (a gateway already runs on this data_dir: `systemctl status townlink`; two configs must not share a data_dir)"
		}
		return nil, fmt.Errorf("%w: store in %s: %w%s", ErrStart, dir, err, hint)
	}
	g.db = db
	// The gateway's identity signs every evidence record; generated at
	// first start, never sent anywhere (townlink id prints its public key).
	key, err := identity.Load(identity.Dir(cfg.Gateway.DataDir))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%w: identity: %w", ErrStart, err)
	}
	g.key = key
	g.queues = make(map[drivers.Class]*badgerq.Queue)
	queues := make(map[drivers.Class]uplink.Queue)
	gap := logGaps(log, wire.GapEncoder(cfg.Gateway.ID, nil, clock.Synced))
	for _, c := range streams {
		name := pipeline.StreamOf(c)
		q, err := db.Stream(name, badgerq.StreamOptions{Seal: wire.NewSealer(name, key).Seal, Gap: gap, Quota: quotaOf(cfg, name)})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("%w: stream %s: %w", ErrStart, name, err)
		}
		g.queues[c] = q
		queues[c] = q
	}
	devs := make(map[string]pipeline.Device, len(cfg.Devices)+1)
	devs[cfg.Gateway.ID] = pipeline.Device{Kind: "gateway"}
	for _, d := range cfg.Devices {
		devs[d.ID] = pipeline.Device{Kind: string(d.Kind), Grid: d.Grid}
	}
	g.recent = newRecent()
	g.pipe = &pipeline.Pipeline{Gateway: cfg.Gateway.ID, Devices: devs, Queues: queues, ClockSynced: clock.Synced, DropReason: badgerq.Reason,
		Observe: func(_ context.Context, rs []drivers.Reading) { g.recent.Observe(rs) }}
	if err := g.buildRules(); err != nil {
		db.Close()
		return nil, err
	}
	if err := g.buildDevices(); err != nil {
		db.Close()
		return nil, err
	}
	if err := g.buildField(); err != nil {
		db.Close()
		return nil, err
	}
	if err := g.buildCommands(); err != nil {
		db.Close()
		return nil, err
	}
	g.buildHealth()
	g.buildStatus()
	if err := g.buildLocal(); err != nil {
		db.Close()
		return nil, err
	}
	client, err := g.newClient()
	if err != nil {
		db.Close()
		return nil, err
	}
	g.client = client
	if err := g.buildForwarders(); err != nil {
		db.Close()
		return nil, err
	}
	return g, nil
}

// quotaOf is a stream's disk quota from the config (0: none).
func quotaOf(cfg *config.Config, stream string) int64 {
	q := cfg.Uplink.Quota
	switch stream {
	case wire.StreamTelemetry:
		return int64(q.Telemetry)
	case wire.StreamEvents:
		return int64(q.Events)
	case wire.StreamAlarms:
		return int64(q.Alarms)
	case wire.StreamEvidence:
		return int64(q.Evidence)
	}
	return 0
}

// logGaps logs each gap record the queue writes (wire.GapEncoder builds it).
func logGaps(log *slog.Logger, gap func(from, to uint64, reason string) ([]byte, error)) func(from, to uint64, reason string) ([]byte, error) {
	return func(from, to uint64, reason string) ([]byte, error) {
		log.Warn("records discarded, gap record written", "from", from, "to", to, "reason", reason)
		return gap(from, to, reason)
	}
}

// buildForwarders sets up one forwarder per stream: telemetry and events
// share a paced backlog; alarms and evidence are never paced.
func (g *Gateway) buildForwarders() error {
	var pacer *uplink.Pacer
	if rate := g.cfg.Uplink.DrainRate; rate > 0 {
		var err error
		if pacer, err = uplink.NewPacer(float64(rate), 0); err != nil {
			return fmt.Errorf("%w: uplink.drain_rate: %w", ErrStart, err)
		}
	}
	g.fwds = map[string]*uplink.Forwarder{}
	for _, c := range streams {
		name := pipeline.StreamOf(c)
		cfg := uplink.ForwarderConfig{
			Queue:     g.queues[c],
			Publisher: timedPublisher{g.client, name, g.metrics},
			Topic:     g.topic(name),
			Frame:     wire.Framer(g.cfg.Gateway.ID, name),
			MaxBatch:  g.cfg.Uplink.Batch.MaxRecords,
			MaxBytes:  int(g.cfg.Uplink.Batch.MaxBytes),
			MaxDelay:  g.cfg.Uplink.Batch.MaxDelay,
			Window:    g.cfg.Uplink.Window,
			MaxRetry:  30 * time.Second,
			Logger:    g.log.With("part", "forwarder", "stream", name),
		}
		if c == drivers.Telemetry || c == drivers.Event {
			cfg.Pacer = pacer
		}
		if g.cfg.Uplink.Ack == config.AckPlatform {
			cfg.Ack = uplink.AckPlatform
		}
		f, err := uplink.NewForwarder(cfg)
		if err != nil {
			return fmt.Errorf("%w: forwarder %s: %w", ErrStart, name, err)
		}
		g.fwds[name] = f
	}
	// One answer per message, as stored: the platform gets exactly the
	// CommandResult map it always got, now queued durably.
	f, err := uplink.NewForwarder(uplink.ForwarderConfig{
		Queue: g.cmdResults, Publisher: g.client, Topic: g.topic(wire.StreamCmdResult),
		Frame:    func(recs [][]byte) ([]byte, error) { return recs[0], nil },
		MaxBatch: 1, MaxRetry: 30 * time.Second,
		Logger: g.log.With("part", "forwarder", "stream", wire.StreamCmdResult),
	})
	if err != nil {
		return fmt.Errorf("%w: forwarder %s: %w", ErrStart, wire.StreamCmdResult, err)
	}
	g.fwds[wire.StreamCmdResult] = f
	return nil
}

// subscribeAcks takes the platform's {stream, upto} acknowledgements in
// ack: platform mode.
func (g *Gateway) subscribeAcks(ctx context.Context) error {
	if g.cfg.Uplink.Ack != config.AckPlatform {
		return nil
	}
	return g.client.Subscribe(ctx, g.topic(wire.StreamAck), func(_ string, p []byte) {
		a, err := wire.DecodeAck(p)
		if err != nil {
			g.log.Warn("malformed platform ack", "err", err)
			return
		}
		f, ok := g.fwds[a.Stream]
		if !ok {
			g.log.Warn("platform ack for an unknown stream", "stream", a.Stream)
			return
		}
		f.PlatformAck(a.Upto)
	})
}

func bootID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Sprintf("%x", time.Now().UnixNano())
	}
	return hex.EncodeToString(b[:])
}

func (g *Gateway) topic(stream string) string {
	return wire.Topic(g.cfg.Gateway.County, g.cfg.Gateway.Township, g.cfg.Gateway.ID, stream)
}

func (g *Gateway) newClient() (*mqttpub.Client, error) {
	u := g.cfg.Uplink
	will, err := g.status.Encode(wire.StateOffline)
	if err != nil {
		return nil, fmt.Errorf("%w: status: %w", ErrStart, err)
	}
	opts := mqttpub.Options{
		Brokers:  u.Brokers,
		ClientID: g.cfg.Gateway.ID,
		Username: u.Username,
		Will:     &mqttpub.Message{Topic: g.topic(wire.StreamStatus), Payload: will},
		Backoff:  mqttpub.Backoff{Min: u.Backoff.Min, Max: u.Backoff.Max},
		// The broker keeps commands sent while the gateway is away.
		PersistentSession: true,
		Logger:            g.log.With("part", "uplink"),
		OnConnect: func() {
			g.status.Kick()
			// Resend at once what waited for the broker.
			for _, f := range g.fwds {
				f.Reconnected()
			}
		},
	}
	if u.PasswordFile != "" {
		pw, err := certs.ReadSecret(u.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("%w: uplink.password_file: %w", ErrStart, err)
		}
		opts.Password = pw
	}
	if u.TLS() {
		tc, err := certs.NewClient(u.CA, u.Cert, u.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: uplink TLS: %w", ErrStart, err)
		}
		opts.GetTLS = tc.Config // the CA and the certificate are re-read when their files change
	}
	c, err := mqttpub.New(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: uplink: %w", ErrStart, err)
	}
	return c, nil
}

// Run runs the gateway until ctx ends, then stops every part and closes
// the store. Only a failure to start is returned as an error; a dead broker,
// a missing serial port or a silent device degrade one part and are logged.
func (g *Gateway) Run(ctx context.Context) error {
	defer g.db.Close()
	if err := g.startField(); err != nil {
		return err
	}
	if b := g.fieldBroker.Load(); b != nil {
		// Closed before the store: no message is acknowledged after it.
		defer b.Close()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g.client.Start(ctx)
	if err := g.subscribeCommands(ctx); err != nil {
		g.log.Warn("command subscription will be retried on connect", "err", err)
	}
	if err := g.subscribeAcks(ctx); err != nil {
		g.log.Warn("ack subscription will be retried on connect", "err", err)
	}
	// Every part runs under the supervisor: one that stops or panics is
	// restarted with back-off and reported in the status (restarts).
	for name, f := range g.fwds {
		g.parts.Go(ctx, "forwarder "+name, f.Run)
	}
	for _, l := range g.lines {
		g.parts.Go(ctx, "line "+l.Name(), l.Run)
	}
	for _, s := range g.sources {
		g.parts.Go(ctx, "device "+s.id, func(ctx context.Context) error {
			return s.src.Run(ctx, func(r drivers.Reading) error { return g.pipe.Emit(ctx, []drivers.Reading{r}) })
		})
	}
	g.parts.Go(ctx, "status", g.status.Run)
	g.parts.Go(ctx, "rules", g.runRules)
	g.parts.Go(ctx, "commands", g.cmd.Run)
	g.parts.Go(ctx, "time sync", g.cmd.DailyTimeSync)
	g.parts.Go(ctx, "metrics", g.serveMetrics)
	g.parts.Go(ctx, "control socket", g.serveLocal)
	g.parts.Go(ctx, "web", g.serveWeb)
	g.parts.Go(ctx, "watchdog", g.watchdog)
	g.log.Info("gateway running", "id", g.cfg.Gateway.ID, "lines", len(g.lines), "devices", len(g.cfg.Devices), "brokers", g.cfg.Uplink.Brokers)
	<-ctx.Done()
	g.parts.Wait()
	// A clean stop: say so, then disconnect (the will is for unclean ends).
	pctx, pcancel := context.WithTimeout(context.Background(), 3*time.Second)
	g.status.Publish(pctx, wire.StateOffline)
	pcancel()
	g.saveDrops()
	g.client.Close()
	g.log.Info("gateway stopped")
	return nil
}
