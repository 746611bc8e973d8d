package gateway

import (
	"context"
	"path/filepath"

	"github.com/townlink/townlink/gateway/certs"
	"github.com/townlink/townlink/gateway/clock"
	"github.com/townlink/townlink/gateway/metrics"
	"github.com/townlink/townlink/gateway/pipeline"
	"github.com/townlink/townlink/gateway/status"
	"github.com/townlink/townlink/uplink/wire"
)

// buildStatus wires the status reporter and the metrics over the parts
// New has built: the queues, the health registry, the drop counters
// (kept in data_dir/drops.json across restarts) and the certificates.
func (g *Gateway) buildStatus() {
	drops, err := status.OpenDrops(filepath.Join(g.cfg.Gateway.DataDir, "drops.json"), g.db, g.pipe)
	if err != nil {
		g.log.Warn("drop counters start from zero", "err", err)
	}
	g.drops = drops
	g.certs = certs.NewMonitor(nil, clock.Synced, g.log.With("part", "certs"))
	g.certs.Add("uplink_client", g.cfg.Uplink.Cert)
	g.certs.Add("uplink_ca", g.cfg.Uplink.CA)
	if g.cfg.FieldBroker.TLSListen != "" {
		g.certs.Add("field", g.cfg.FieldBroker.Cert)
	}
	sq := make(map[string]status.Queue, len(g.queues))
	mq := make(map[string]metrics.Queue, len(g.queues))
	for c, q := range g.queues {
		sq[pipeline.StreamOf(c)] = q
		mq[pipeline.StreamOf(c)] = q
	}
	connected := func() bool { return g.client != nil && g.client.Connected() }
	g.status = status.New(status.Config{
		Gateway: g.cfg.Gateway.ID, Version: Version, Boot: g.boot, Interval: g.cfg.Gateway.StatusInterval,
		Queues: sq, Health: g.health, Drops: drops, Certs: g.certs, Connected: connected,
		Publish: func(ctx context.Context, p []byte) error {
			return g.client.PublishRetained(ctx, g.topic(wire.StreamStatus), p)
		},
		ClockSynced: clock.Synced,
		Signer:      g.key,
		Restarts:    g.restarts,
		Alarms:      g.activeAlarms,
		OnTick:      func() { g.saveDrops(); g.certs.Check() }, // certificate warnings are logged even while offline
		Logger:      g.log.With("part", "status"),
	})
	g.metrics = metrics.New(metrics.Sources{
		Readings: g.pipe.Counts, Health: g.health, Devices: g.deviceCounts, Lines: g.lineCounts,
		Queues: mq, Drops: drops, Connected: connected, Field: g.fieldCounts, Certs: g.certs, Restarts: g.restarts,
		Forwarders: g.forwarderCounts,
		Alarms:     g.alarmCounts,
	})
}

func (g *Gateway) saveDrops() {
	if err := g.drops.Save(); err != nil {
		g.log.Warn("drop counters not saved", "err", err)
	}
}

// lineCounts are the serial lines' figures for the metrics.
func (g *Gateway) lineCounts() []metrics.LineCounts {
	out := make([]metrics.LineCounts, 0, len(g.lines))
	for _, l := range g.lines {
		s := l.Stats()
		out = append(out, metrics.LineCounts{Name: l.Name(), OK: s.OK, Timeouts: s.Timeouts, FrameErrors: s.FrameErrors,
			DeviceErrors: s.DeviceErrors, OtherErrors: s.OtherErrors, Reopens: s.Reopens, Utilisation: s.Utilisation(), PortOpen: s.PortOpen})
	}
	return out
}

// restarts are the parts the supervisor restarted, for the status.
func (g *Gateway) restarts() map[string]uint64 {
	out := map[string]uint64{}
	for name, st := range g.parts.Parts() {
		if st.Restarts > 0 {
			out[name] = st.Restarts
		}
	}
	return out
}

// forwarderCounts are the forwarders' counters for the metrics.
func (g *Gateway) forwarderCounts() map[string]metrics.ForwarderCounts {
	out := make(map[string]metrics.ForwarderCounts, len(g.fwds))
	for name, f := range g.fwds {
		st := f.Stats()
		out[name] = metrics.ForwarderCounts{Published: st.Published, Acked: st.Acked, Retries: st.Retries, IgnoredAcks: st.IgnoredAcks}
	}
	return out
}
