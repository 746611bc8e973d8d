package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/townlink/townlink/gateway/health"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	dAccepted  = desc("townlink_readings_accepted_total", "Readings durably queued.")
	dRejected  = desc("townlink_readings_rejected_total", "Readings not queued (store error, bad value).")
	dState     = desc("townlink_device_state", "Device health: 2 ok, 1 degraded, 0 down.", "device")
	dUp        = desc("townlink_device_up", "1 while the device is ok, else 0.", "device")
	dReads     = desc("townlink_device_reads_total", "Successful reads: polls answered, pulse readings queued, field messages accepted.", "device")
	dDevErrs   = desc("townlink_device_errors_total", "Failed reads: polls unanswered or refused, readings not queued, field messages rejected.", "device")
	dLineTx    = desc("townlink_line_transactions_total", "Polls on a serial line, by result.", "line", "result")
	dLineUtil  = desc("townlink_line_utilisation_ratio", "Fraction of time a serial line was busy polling.", "line")
	dLineOpen  = desc("townlink_line_port_open", "1 while the serial port is open.", "line")
	dLineReop  = desc("townlink_line_reopens_total", "Times a serial port failed and was reopened.", "line")
	dBacklog   = desc("townlink_backlog_records", "Records waiting to be sent, per stream.", "stream")
	dBytes     = desc("townlink_backlog_bytes", "Stored bytes waiting to be sent, per stream.", "stream")
	dOldest    = desc("townlink_oldest_unsent_seconds", "Age of the oldest record not yet acknowledged, per stream (0 when none waits).", "stream")
	dDropped   = desc("townlink_dropped_records_total", "Records discarded on purpose, by reason (kept across restarts).", "reason")
	dConnected = desc("townlink_uplink_connected", "1 while the county broker is connected.")
	dFieldConn = desc("townlink_field_connects_total", "Field device logins accepted.")
	dFieldAuth = desc("townlink_field_auth_failures_total", "Field device logins refused (unknown user, wrong password).")
	dFieldACL  = desc("townlink_field_acl_denied_total", "Field publishes and subscriptions outside the device's own topics.")
	dFieldRej  = desc("townlink_field_rejected_total", "Field messages refused, by reason.", "reason")
	dFieldPan  = desc("townlink_field_decode_panics_total", "Field connections closed because a packet crashed the MQTT decoder (the gateway runs on).")
	dFieldAcc  = desc("townlink_field_accepted_total", "Field messages stored and acknowledged.")
	dFieldOn   = desc("townlink_field_devices_online", "Field devices connected now.")
	dCertDays  = desc("townlink_cert_days_left", "Whole days until a certificate expires (negative: expired).", "cert")
	dFwdPub    = desc("townlink_uplink_published_records_total", "Records handed to the broker, per stream (resends included).", "stream")
	dFwdAck    = desc("townlink_uplink_acked_records_total", "Records acknowledged and deleted from the store, per stream.", "stream")
	dFwdRetry  = desc("townlink_uplink_retries_total", "Publish failures that made the forwarder resend, per stream.", "stream")
	dFwdIgn    = desc("townlink_uplink_ignored_acks_total", "Platform acks above anything the gateway published (forged or stale), ignored, per stream.", "stream")
	dRulesObs  = desc("townlink_rules_observed_total", "Readings evaluated by the early-warning rules.")
	dRulesErr  = desc("townlink_rules_expr_errors_total", "Rule expression runs that failed (e.g. an integer division by zero); logged at most once a minute per rule.")
	dAlarms    = desc("townlink_alarms_total", "Alarm records queued, by event (raised, cleared, suppressed).", "event")
	dAlarmsAct = desc("townlink_alarms_active", "Active alarms, by severity (1 most severe).", "severity")
	dRestarts  = desc("townlink_part_restarts_total", "Times a gateway part (line, forwarder, device source) stopped on its own and was restarted.", "part")
)

var all = []*prometheus.Desc{dAccepted, dRejected, dState, dUp, dReads, dDevErrs, dLineTx, dLineUtil, dLineOpen, dLineReop,
	dBacklog, dBytes, dOldest, dDropped, dConnected, dFieldConn, dFieldAuth, dFieldACL, dFieldRej, dFieldAcc, dFieldOn, dCertDays, dRestarts, dFwdPub, dFwdAck, dFwdRetry, dFwdIgn, dRulesObs, dRulesErr, dAlarms, dAlarmsAct}

// collector reads the sources at each scrape.
type collector struct{ s Sources }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range all {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if s.Readings != nil {
		a, r := s.Readings()
		counter(dAccepted, a)
		counter(dRejected, r)
	}
	if s.Health != nil {
		for id, st := range s.Health.States() {
			gauge(dState, float64(st), id)
			gauge(dUp, b2f(st == health.Ok), id)
		}
	}
	if s.Devices != nil {
		for id, d := range s.Devices() {
			counter(dReads, d.Reads, id)
			counter(dDevErrs, d.Errors, id)
		}
	}
	if s.Lines != nil {
		for _, l := range s.Lines() {
			for _, r := range []struct {
				k string
				v uint64
			}{{"ok", l.OK}, {"timeout", l.Timeouts}, {"frame", l.FrameErrors}, {"device_error", l.DeviceErrors}, {"other", l.OtherErrors}} {
				counter(dLineTx, r.v, l.Name, r.k)
			}
			gauge(dLineUtil, l.Utilisation, l.Name)
			gauge(dLineOpen, b2f(l.PortOpen), l.Name)
			counter(dLineReop, l.Reopens, l.Name)
		}
	}
	now := s.Now()
	for name, q := range s.Queues {
		st := q.Stats()
		gauge(dBacklog, float64(st.Backlog), name)
		gauge(dBytes, float64(st.Bytes), name)
		age := 0.0
		if !st.Oldest.IsZero() {
			age = max(0, now.Sub(st.Oldest).Seconds())
		}
		gauge(dOldest, age, name)
	}
	if s.Drops != nil {
		for reason, n := range s.Drops.Dropped() {
			counter(dDropped, n, reason)
		}
	}
	if s.Connected != nil {
		gauge(dConnected, b2f(s.Connected()))
	}
	if s.Field != nil {
		f := s.Field()
		counter(dFieldConn, f.Connects)
		counter(dFieldAuth, f.AuthFailures)
		counter(dFieldACL, f.ACLDenied)
		counter(dFieldRej, f.TooLarge, "too_large")
		counter(dFieldRej, f.Malformed, "malformed")
		counter(dFieldRej, f.HandlerErrors, "not_stored")
		counter(dFieldPan, f.DecodePanics)
		counter(dFieldAcc, f.Accepted)
		gauge(dFieldOn, float64(f.Online))
	}
	if s.Certs != nil {
		for name, d := range s.Certs.Days() {
			gauge(dCertDays, float64(d), name)
		}
	}
	if s.Forwarders != nil {
		for stream, f := range s.Forwarders() {
			counter(dFwdPub, f.Published, stream)
			counter(dFwdAck, f.Acked, stream)
			counter(dFwdRetry, f.Retries, stream)
			counter(dFwdIgn, f.IgnoredAcks, stream)
		}
	}
	if s.Alarms != nil {
		a := s.Alarms()
		counter(dRulesObs, a.Observed)
		counter(dRulesErr, a.ExprErrors)
		counter(dAlarms, a.Raised, "raised")
		counter(dAlarms, a.Cleared, "cleared")
		counter(dAlarms, a.Suppressed, "suppressed")
		for sev := 1; sev <= 4; sev++ {
			gauge(dAlarmsAct, float64(a.Active[sev]), strconv.Itoa(sev))
		}
	}
	if s.Restarts != nil {
		for part, n := range s.Restarts() {
			counter(dRestarts, n, part)
		}
	}
}
