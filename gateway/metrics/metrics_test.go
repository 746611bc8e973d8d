package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/townlink/townlink/gateway/health"
	"github.com/townlink/townlink/gateway/metrics"
	"github.com/townlink/townlink/uplink/badgerq"
	"github.com/townlink/townlink/uplink/wire"
)

type drops map[string]uint64

func (d drops) Dropped() map[string]uint64 { return d }

type days map[string]int64

func (d days) Days() map[string]int64 { return d }

// scrape GETs /metrics over HTTP and parses it with Prometheus's parser.
func scrape(t *testing.T, h http.Handler) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	return mfs, string(body)
}

// value is the value of the sample of family name whose labels are
// label=value pairs.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	mf, ok := mfs[name]
	if !ok {
		t.Fatalf("no family %s", name)
	}
next:
	for _, m := range mf.Metric {
		have := map[string]string{}
		for _, lp := range m.Label {
			have[lp.GetName()] = lp.GetValue()
		}
		if len(have) != len(labels)/2 {
			continue
		}
		for i := 0; i < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no sample %s%v", name, labels)
	return 0
}

func TestScrapeReadsEveryPart(t *testing.T) {
	db, err := badgerq.Open(badgerq.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tel, _ := db.Stream(wire.StreamTelemetry, badgerq.StreamOptions{})
	alarms, _ := db.Stream(wire.StreamAlarms, badgerq.StreamOptions{})
	if err := tel.Append(context.Background(), []byte("abc"), []byte("de"), []byte("f")); err != nil {
		t.Fatal(err)
	}
	oldest := tel.Stats().Oldest

	reg := health.NewRegistry("m1", "door-1", "kiosk-1")
	reg.Add(health.ReporterFunc(func() map[string]health.State {
		return map[string]health.State{"m1": health.Degraded, "kiosk-1": health.Ok}
	}))
	m := metrics.New(metrics.Sources{
		Readings: func() (uint64, uint64) { return 41, 2 },
		Health:   reg,
		Devices: func() map[string]metrics.DeviceCounts {
			return map[string]metrics.DeviceCounts{"m1": {Reads: 10, Errors: 3}, "door-1": {Reads: 4}}
		},
		Lines: func() []metrics.LineCounts {
			return []metrics.LineCounts{{Name: "rs485-1", OK: 10, Timeouts: 3, FrameErrors: 1, Utilisation: 0.25, PortOpen: true, Reopens: 2}}
		},
		Queues:    map[string]metrics.Queue{wire.StreamTelemetry: tel, wire.StreamAlarms: alarms},
		Drops:     drops{"quota": 9, "field_rejected": 1},
		Connected: func() bool { return true },
		Field: func() metrics.FieldCounts {
			return metrics.FieldCounts{Connects: 5, AuthFailures: 2, ACLDenied: 1, TooLarge: 4, Malformed: 3, DecodePanics: 6, Accepted: 77, Online: 1}
		},
		Certs: days{"uplink_client": 12, "uplink_ca": -2},
		Alarms: func() metrics.AlarmCounts {
			return metrics.AlarmCounts{Observed: 500, Raised: 7, Cleared: 5, Suppressed: 1, ExprErrors: 3, Active: map[int]int{1: 2}}
		},
		Now: func() time.Time { return oldest.Add(90 * time.Second) },
	})
	m.ObservePublish(wire.StreamTelemetry, 30*time.Millisecond)
	m.ObservePublish(wire.StreamTelemetry, 2*time.Second)

	mfs, body := scrape(t, m.Handler())
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"townlink_readings_accepted_total", nil, 41},
		{"townlink_readings_rejected_total", nil, 2},
		{"townlink_device_state", []string{"device", "m1"}, 1},
		{"townlink_device_state", []string{"device", "door-1"}, 0},
		{"townlink_device_state", []string{"device", "kiosk-1"}, 2},
		{"townlink_device_up", []string{"device", "kiosk-1"}, 1},
		{"townlink_device_up", []string{"device", "m1"}, 0},
		{"townlink_device_reads_total", []string{"device", "m1"}, 10},
		{"townlink_device_errors_total", []string{"device", "m1"}, 3},
		{"townlink_line_transactions_total", []string{"line", "rs485-1", "result", "timeout"}, 3},
		{"townlink_line_transactions_total", []string{"line", "rs485-1", "result", "frame"}, 1},
		{"townlink_line_utilisation_ratio", []string{"line", "rs485-1"}, 0.25},
		{"townlink_line_port_open", []string{"line", "rs485-1"}, 1},
		{"townlink_line_reopens_total", []string{"line", "rs485-1"}, 2},
		{"townlink_backlog_records", []string{"stream", "telemetry"}, 3},
		{"townlink_backlog_records", []string{"stream", "alarms"}, 0},
		{"townlink_oldest_unsent_seconds", []string{"stream", "telemetry"}, 90},
		{"townlink_oldest_unsent_seconds", []string{"stream", "alarms"}, 0},
		{"townlink_dropped_records_total", []string{"reason", "quota"}, 9},
		{"townlink_uplink_connected", nil, 1},
		{"townlink_field_auth_failures_total", nil, 2},
		{"townlink_field_acl_denied_total", nil, 1},
		{"townlink_field_decode_panics_total", nil, 6},
		{"townlink_field_rejected_total", []string{"reason", "too_large"}, 4},
		{"townlink_field_rejected_total", []string{"reason", "malformed"}, 3},
		{"townlink_field_accepted_total", nil, 77},
		{"townlink_field_devices_online", nil, 1},
		{"townlink_cert_days_left", []string{"cert", "uplink_client"}, 12},
		{"townlink_cert_days_left", []string{"cert", "uplink_ca"}, -2},
		{"townlink_uplink_publish_seconds", []string{"stream", "telemetry"}, 2},
		{"townlink_rules_observed_total", nil, 500},
		{"townlink_rules_expr_errors_total", nil, 3},
		{"townlink_alarms_total", []string{"event", "raised"}, 7},
		{"townlink_alarms_total", []string{"event", "suppressed"}, 1},
		{"townlink_alarms_active", []string{"severity", "1"}, 2},
		{"townlink_alarms_active", []string{"severity", "4"}, 0},
	} {
		if got := value(t, mfs, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := value(t, mfs, "townlink_backlog_bytes", "stream", "telemetry"); got < 6 {
		t.Errorf("backlog bytes = %v, want at least the 6 payload bytes", got)
	}
	// One gauge per device, no state label that would churn series.
	if n := len(mfs["townlink_device_state"].Metric); n != 3 {
		t.Errorf("%d device_state series, want 3", n)
	}
	for _, line := range []string{
		`townlink_device_state{device="door-1"} 0`,
		`townlink_uplink_publish_seconds_bucket{stream="telemetry",le="0.05"} 1`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("no line %q in\n%s", line, body)
		}
	}
	for _, fam := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := mfs[fam]; !ok {
			t.Errorf("no %s: Go and process collectors missing", fam)
		}
	}
}

// Sources left nil are left out, and a registry of its own is used.
func TestNilSourcesAreLeftOut(t *testing.T) {
	m := metrics.New(metrics.Sources{})
	mfs, _ := scrape(t, m.Handler())
	for name := range mfs {
		if strings.HasPrefix(name, "townlink_") {
			t.Errorf("family %s without a source", name)
		}
	}
	if _, ok := mfs["go_goroutines"]; !ok {
		t.Error("no Go collector")
	}
	if m.Registry() == nil {
		t.Error("no registry")
	}
}
