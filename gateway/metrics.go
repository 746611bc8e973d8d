package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/townlink/townlink/gateway/metrics"
	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/wire"
)

// serveMetrics serves /metrics (Prometheus text format) and /status (the
// status message as JSON) on gateway.metrics_listen until ctx ends.
func (g *Gateway) serveMetrics(ctx context.Context) error {
	addr := g.cfg.Gateway.MetricsListen
	if addr == "" {
		<-ctx.Done()
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics_listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", g.metrics.Handler())
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(g.status.Snapshot(wire.StateOnline))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	stopped := make(chan struct{})
	go func() { // owned by serveMetrics: waited for below
		defer close(stopped)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	g.log.Info("metrics listening", "addr", ln.Addr().String())
	err = srv.Serve(ln)
	<-stopped
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// timedPublisher measures each successful publish up to its PUBACK for
// the publish latency histogram.
type timedPublisher struct {
	p      uplink.Publisher
	stream string
	m      *metrics.Metrics
}

func (t timedPublisher) Publish(ctx context.Context, topic string, payload []byte) error {
	start := time.Now()
	err := t.p.Publish(ctx, topic, payload)
	if err == nil {
		t.m.ObservePublish(t.stream, time.Since(start))
	}
	return err
}
