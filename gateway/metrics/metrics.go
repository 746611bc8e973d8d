// Package metrics serves the gateway's Prometheus metrics from a registry
// of its own (never the global default one). At each scrape it reads each
// part's Stats through the small interfaces and functions in Sources; the
// only state it keeps is the publish latency histogram, which the uplink
// feeds through ObservePublish.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/townlink/townlink/gateway/health"
	"github.com/townlink/townlink/uplink/badgerq"
)

// Queue is one stream's queue.
type Queue interface {
	Stats() badgerq.Stats
}

// DeviceCounts are one device's reads since start: polls answered (serial,
// Modbus TCP), readings queued (pulse), messages accepted (field); Errors
// the failed ones.
type DeviceCounts struct {
	Reads, Errors uint64
}

// LineCounts are one serial line's figures since start.
type LineCounts struct {
	Name                                                 string
	OK, Timeouts, FrameErrors, DeviceErrors, OtherErrors uint64 // polls by result
	Reopens                                              uint64
	Utilisation                                          float64 // fraction of time busy
	PortOpen                                             bool
}

// FieldCounts are the field broker's counters since start.
type FieldCounts struct {
	Connects      uint64 // logins accepted
	AuthFailures  uint64 // logins refused
	ACLDenied     uint64 // publishes and subscriptions outside the device's topics
	TooLarge      uint64 // messages over the size limit
	Malformed     uint64 // messages the gateway could not decode (acknowledged, dropped)
	HandlerErrors uint64 // messages not stored in time (not acknowledged: resent)
	DecodePanics  uint64 // connections closed because a packet crashed the MQTT decoder
	Accepted      uint64
	Online        int // devices connected now
}

// Sources are what the metrics read at each scrape. A nil source is left
// out.
type Sources struct {
	Readings  func() (accepted, rejected uint64)
	Health    health.Reporter
	Devices   func() map[string]DeviceCounts
	Lines     func() []LineCounts
	Queues    map[string]Queue // by stream
	Drops     interface{ Dropped() map[string]uint64 }
	Connected func() bool
	Field     func() FieldCounts
	Certs     interface{ Days() map[string]int64 }
	Restarts  func() map[string]uint64 // parts restarted by the supervisor
	// Alarms reports the early-warning engine's counters.
	Alarms func() AlarmCounts
	// Forwarders reports each stream's forwarder counters.
	Forwarders func() map[string]ForwarderCounts
	Now        func() time.Time // nil: time.Now
}

// AlarmCounts are the rules engine's counters.
type AlarmCounts struct {
	Observed, Raised, Cleared, Suppressed uint64
	ExprErrors                            uint64      // rule expression runs that failed
	Active                                map[int]int // active alarms by severity (1 most severe)
}

// ForwarderCounts are one stream forwarder's counters.
type ForwarderCounts struct {
	Published, Acked, Retries uint64
	IgnoredAcks               uint64 // platform acks above anything published: forged or stale
}

// Metrics is the gateway's metrics registry.
type Metrics struct {
	reg     *prometheus.Registry
	publish *prometheus.HistogramVec
}

// New returns the metrics over s, with the Go runtime and process
// collectors.
func New(s Sources) *Metrics {
	if s.Now == nil {
		s.Now = time.Now
	}
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		publish: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "townlink_uplink_publish_seconds",
			Help:    "Time from publishing a batch to the county broker's PUBACK, per stream.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"stream"}),
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.publish, &collector{s: s})
	return m
}

// Registry is the registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObservePublish records one batch's publish latency on stream: the hook
// for the uplink forwarder (its PUBACK wait).
func (m *Metrics) ObservePublish(stream string, d time.Duration) {
	m.publish.WithLabelValues(stream).Observe(d.Seconds())
}
