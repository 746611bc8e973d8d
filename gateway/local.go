package gateway

import (
	"context"
	"fmt"
	"net/http"

	"github.com/townlink/townlink/gateway/localapi"
	"github.com/townlink/townlink/gateway/pipeline"
	"github.com/townlink/townlink/gateway/recent"
	"github.com/townlink/townlink/gateway/web"
	"github.com/townlink/townlink/uplink/wire"
)

// buildLocal wires the technician's side of the gateway: the control
// socket (townlink status, read, scan) and the local page, both over the
// parts New has built. Nothing listens before Run.
func (g *Gateway) buildLocal() error {
	queues := make(map[string]localapi.Queue, len(g.queues))
	for c, q := range g.queues {
		queues[pipeline.StreamOf(c)] = q
	}
	lines := make(map[string]localapi.Doer, len(g.lines))
	for _, l := range g.lines {
		lines[l.Name()] = l
	}
	readers := make(map[string]localapi.Reader, len(g.readers))
	for id, d := range g.readers {
		readers[id] = d
	}
	svc, err := localapi.New(localapi.Sources{
		Config:      g.cfg,
		Snapshot:    func() *wire.Status { return g.status.Snapshot(wire.StateOnline) },
		Queues:      queues,
		Lines:       g.lineCounts,
		Connected:   func() bool { return g.client != nil && g.client.Connected() },
		Recent:      g.recent,
		FieldOnline: func() int { return g.fieldCounts().Online },
		LastErrors: func() map[string]string {
			m := map[string]string{}
			for _, l := range g.lines {
				for id, st := range l.States() {
					if st.LastErr != "" {
						m[id] = st.LastErr
					}
				}
			}
			return m
		},
		Alarms: func() []localapi.Alarm { // g.alarms: the rules engine's, once wired
			if g.alarms == nil {
				return nil
			}
			return g.alarms()
		},
		Devices:  readers,
		LineJobs: lines,
		Scan:     scanJob,
		TimeSync: func(ctx context.Context) (int, error) {
			res, err := g.cmd.TimeSync(ctx)
			n, _ := res["lines"].AsInt()
			return int(n), err
		},
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStart, err)
	}
	g.local = svc
	if g.cfg.Web.Listen == "" {
		return nil
	}
	g.web, err = web.New(web.Options{
		Listen: g.cfg.Web.Listen, PasswordFile: g.cfg.Web.PasswordFile,
		Backend: svc, History: g.recent, Logger: g.log.With("part", "web"),
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStart, err)
	}
	return nil
}

// newRecent is the in-memory last hour of every point, fed by the
// pipeline once readings are queued.
func newRecent() *recent.Store { return recent.New(recent.Options{}) }

// serveLocal serves the control socket until ctx ends.
func (g *Gateway) serveLocal(ctx context.Context) error {
	ln, err := localapi.Listen(g.cfg.Gateway.Socket)
	if err != nil {
		return err
	}
	g.log.Info("control socket listening", "path", g.cfg.Gateway.Socket)
	mux := http.NewServeMux()
	mux.Handle("POST /backup", g.BackupHandler()) // townlink backup while the gateway runs
	mux.Handle("/", g.local.Handler())
	return localapi.Serve(ctx, ln, mux)
}

// serveWeb serves the local page until ctx ends (when web.listen is set).
func (g *Gateway) serveWeb(ctx context.Context) error {
	if g.web == nil {
		<-ctx.Done()
		return nil
	}
	return g.web.Run(ctx)
}

// WebAddr is the address the local page listens on, once it does; "" when
// web.listen is empty or before Run has opened it.
func (g *Gateway) WebAddr() string {
	if g.web == nil {
		return ""
	}
	return g.web.Addr()
}
