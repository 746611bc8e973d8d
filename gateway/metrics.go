package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/townlink/townlink/gateway/pipeline"
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
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		g.writeMetrics(w)
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(g.status.snapshot("online"))
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

func (g *Gateway) writeMetrics(w io.Writer) {
	g.writeRuleMetrics(w) // rules.go
	accepted, rejected := g.pipe.Counts()
	fmt.Fprintf(w, "# HELP townlink_readings_accepted_total Readings durably queued.\n# TYPE townlink_readings_accepted_total counter\ntownlink_readings_accepted_total %d\n", accepted)
	fmt.Fprintf(w, "# HELP townlink_readings_rejected_total Readings not queued (store error, bad value).\n# TYPE townlink_readings_rejected_total counter\ntownlink_readings_rejected_total %d\n", rejected)
	fmt.Fprintln(w, "# HELP townlink_backlog_records Records waiting to be sent, per stream.\n# TYPE townlink_backlog_records gauge")
	for c, q := range g.queues {
		st := q.Stats()
		fmt.Fprintf(w, "townlink_backlog_records{stream=%q} %d\n", pipeline.StreamOf(c), st.Backlog)
	}
	fmt.Fprintln(w, "# HELP townlink_uplink_connected Whether the county broker is connected.\n# TYPE townlink_uplink_connected gauge")
	connected := 0
	if g.client.Connected() {
		connected = 1
	}
	fmt.Fprintf(w, "townlink_uplink_connected %d\n", connected)
	fmt.Fprintln(w, "# HELP townlink_line_transactions_total Polls on a serial line, by result.\n# TYPE townlink_line_transactions_total counter")
	for _, l := range g.lines {
		s := l.Stats()
		for _, kv := range []struct {
			k string
			v uint64
		}{{"ok", s.OK}, {"timeout", s.Timeouts}, {"frame", s.FrameErrors}, {"device_error", s.DeviceErrors}, {"other", s.OtherErrors}} {
			fmt.Fprintf(w, "townlink_line_transactions_total{line=%q,result=%q} %d\n", l.Name, kv.k, kv.v)
		}
	}
	fmt.Fprintln(w, "# HELP townlink_line_utilisation Fraction of time a line was busy polling.\n# TYPE townlink_line_utilisation gauge")
	for _, l := range g.lines {
		fmt.Fprintf(w, "townlink_line_utilisation{line=%q} %.4f\n", l.Name, l.Stats().Utilisation())
	}
	fmt.Fprintln(w, "# HELP townlink_device_up Device state: 1 ok, 0.5 degraded, 0 down.\n# TYPE townlink_device_up gauge")
	devs := g.status.devices()
	ids := make([]string, 0, len(devs))
	for id := range devs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		v := "0"
		switch devs[id] {
		case "ok":
			v = "1"
		case "degraded":
			v = "0.5"
		}
		fmt.Fprintf(w, "townlink_device_up{device=%q,state=%q} %s\n", id, devs[id], v)
	}
}
