package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/townlink/townlink/gateway/fieldin"
	"github.com/townlink/townlink/hardware"
)

// parsed keeps the decoded mappings for the checks that span sections.
type parsed struct {
	top    fields
	gw     fields
	up     fields
	fb     fields
	lines  []fields
	devs   []fields
	points [][]fields // per device
	rules  []ruleFields
}

func (d *decoder) decodeConfig(root *yaml.Node) (*Config, *parsed) {
	c := &Config{}
	p := &parsed{}
	top, ok := d.mapping(root, "", []string{"gateway", "uplink", "store", "lines", "field_broker", "devices", "web", "rules"}, nil)
	if !ok {
		return c, p
	}
	p.top = top
	if fl, ok := top.get("gateway"); ok {
		p.gw = d.decodeGateway(fl, &c.Gateway)
	} else {
		d.errAt(top.node, "", "missing section \"gateway\" (with id, county, township)")
	}
	if fl, ok := top.get("uplink"); ok {
		p.up = d.decodeUplink(fl, &c.Uplink)
	} else {
		d.errAt(top.node, "", "missing section \"uplink\" (with brokers: [\"tls://broker:8883\"] and ca, cert, key)")
	}
	if fl, ok := top.get("store"); ok {
		d.decodeStore(fl, &c.Store)
	}
	if fl, ok := top.get("field_broker"); ok {
		p.fb = d.decodeFieldBroker(fl, &c.FieldBroker)
	}
	if fl, ok := top.get("web"); ok {
		d.decodeWeb(fl, &c.Web)
	}
	if fl, ok := top.get("lines"); ok {
		items, _ := d.list(fl, "a list of \"- name: RS485-1\" entries")
		for _, it := range items {
			var l Line
			lf, ok := d.decodeLine(it, &l)
			if ok {
				c.Lines = append(c.Lines, l)
				p.lines = append(p.lines, lf)
			}
		}
	}
	if fl, ok := top.get("devices"); ok {
		items, _ := d.list(fl, "a list of \"- id: meter-1\" entries")
		for _, it := range items {
			var dev Device
			df, pts, ok := d.decodeDevice(it, &dev)
			if ok {
				c.Devices = append(c.Devices, dev)
				p.devs = append(p.devs, df)
				p.points = append(p.points, pts)
			}
		}
	}
	if fl, ok := top.get("rules"); ok {
		c.Rules, p.rules = d.decodeRules(fl)
	}
	return c, p
}

func (d *decoder) missing(f *fields, key, what string) {
	d.errAt(f.pos(), f.path, "missing %q (%s)", key, what)
}

// validGatewayID: [a-z0-9][a-z0-9-]{0,62}
func validGatewayID(s string) bool {
	if len(s) < 1 || len(s) > 63 {
		return false
	}
	for i, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0:
		default:
			return false
		}
	}
	return true
}

// validDeviceID: [A-Za-z0-9][A-Za-z0-9._-]{0,63}
func validDeviceID(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '-' || c == '.' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

// validPointName: [a-z][a-z0-9_]{0,63}, units in the name (temp_c).
func validPointName(s string) bool {
	if len(s) < 1 || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func allDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (d *decoder) decodeGateway(fl field, g *Gateway) fields {
	f, ok := d.mapping(fl.val, fl.path, []string{"id", "county", "township", "data_dir", "board", "log_level", "status_interval", "metrics_listen", "timezone", "time_sync_at", "socket"}, nil)
	if !ok {
		return f
	}
	if x, ok := f.get("id"); ok {
		if s, ok := d.str(x); ok {
			if validGatewayID(s) {
				g.ID = s
			} else {
				d.errAt(deref(x.val), x.path, "%q is not a valid gateway id (1-63 lower-case letters, digits and '-', not starting with '-'; e.g. gw-zhoushi-01)", clip(s))
			}
		}
	} else {
		d.missing(&f, "id", "the gateway id, e.g. gw-zhoushi-01")
	}
	if x, ok := f.get("county"); ok {
		if s, ok := d.str(x); ok {
			if allDigits(s, 6) {
				g.County = s
			} else {
				d.errAt(deref(x.val), x.path, "%q is not a county code (6 digits, GB/T 2260, e.g. \"320583\")", clip(s))
			}
		}
	} else {
		d.missing(&f, "county", "the 6-digit GB/T 2260 county code, e.g. \"320583\"")
	}
	if x, ok := f.get("township"); ok {
		if s, ok := d.str(x); ok {
			switch {
			case !allDigits(s, 9):
				d.errAt(deref(x.val), x.path, "%q is not a township code (9 digits, e.g. \"320583104\")", clip(s))
			case g.County != "" && !strings.HasPrefix(s, g.County):
				d.errAt(deref(x.val), x.path, "%q does not start with the county code %q (a township code is the county's 6 digits + 3)", s, g.County)
			default:
				g.Township = s
			}
		}
	} else {
		d.missing(&f, "township", "the 9-digit township code, e.g. \"320583104\"")
	}
	if x, ok := f.get("data_dir"); ok {
		if s, ok := d.nonEmpty(x, "a directory, e.g. /var/lib/townlink"); ok {
			if filepath.IsAbs(s) {
				g.DataDir = filepath.Clean(s)
			} else {
				d.errAt(deref(x.val), x.path, "%q is not an absolute path (write it from /, e.g. /var/lib/townlink)", clip(s))
			}
		}
	}
	if x, ok := f.get("board"); ok {
		g.Board, _ = d.str(x)
	}
	if x, ok := f.get("log_level"); ok {
		if s, ok := d.enum(x, "a log level", "debug", "info", "warn", "error"); ok {
			_ = g.LogLevel.UnmarshalText([]byte(s)) // s is one of the four names
		}
	}
	if x, ok := f.get("status_interval"); ok {
		g.StatusInterval, _ = d.duration(x, time.Second, time.Hour)
	}
	if x, ok := f.get("metrics_listen"); ok {
		g.MetricsListen, _ = d.hostPort(x, true, "127.0.0.1:9108")
	}
	if x, ok := f.get("timezone"); ok {
		if s, ok := d.nonEmpty(x, "an IANA time zone, e.g. Asia/Shanghai"); ok {
			if loc, err := time.LoadLocation(s); err == nil && s != "Local" {
				g.Timezone, g.Location = s, loc
			} else {
				d.errAt(deref(x.val), x.path, "%q is not an IANA time zone (the meters' local time, e.g. Asia/Shanghai)", clip(s))
			}
		}
	}
	if x, ok := f.get("time_sync_at"); ok {
		if s, ok := d.nonEmpty(x, "a time of day, e.g. \"03:30\""); ok {
			if _, err := time.Parse("15:04", s); err == nil {
				g.TimeSyncAt = s
			} else {
				d.errAt(deref(x.val), x.path, "%q is not a time of day; write HH:MM in gateway.timezone, e.g. \"03:30\"", clip(s))
			}
		}
	}
	if x, ok := f.get("socket"); ok {
		if s, ok := d.nonEmpty(x, "a socket path, e.g. /run/townlink/townlink.sock"); ok {
			switch {
			case !filepath.IsAbs(s):
				d.errAt(deref(x.val), x.path, "%q is not an absolute path (write it from /, e.g. /run/townlink/townlink.sock)", clip(s))
			case len(s) > MaxSocketPath:
				d.errAt(deref(x.val), x.path, "%q is %d bytes long; a Unix socket path holds at most %d", clip(s), len(s), MaxSocketPath)
			default:
				g.Socket = filepath.Clean(s)
			}
		}
	}
	return f
}

func (d *decoder) decodeWeb(fl field, w *Web) {
	f, ok := d.mapping(fl.val, fl.path, []string{"listen", "password_file"}, nil)
	if !ok {
		return
	}
	if x, ok := f.get("listen"); ok {
		w.Listen, _ = d.hostPort(x, true, "127.0.0.1:8080")
	}
	if x, ok := f.get("password_file"); ok {
		w.PasswordFile, _ = d.absFile(x, "/etc/townlink/web.pw")
	}
}

// Broker URL schemes.
func plainScheme(s string) bool { return s == "tcp" || s == "mqtt" }
func tlsScheme(s string) bool   { return s == "tls" || s == "ssl" || s == "mqtts" }

func schemeOf(u string) string {
	s, _, _ := strings.Cut(u, "://")
	return strings.ToLower(s)
}

func (d *decoder) brokerURL(x field, s string) bool {
	n := deref(x.val)
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || !strings.Contains(s, "://") {
		d.errAt(n, x.path, "%q is not a broker URL (write it like tls://broker.example:8883 or tcp://127.0.0.1:1883)", clip(s))
		return false
	}
	sch := strings.ToLower(u.Scheme)
	if !plainScheme(sch) && !tlsScheme(sch) {
		hint := ""
		if m := suggest(sch, []string{"tcp", "tls", "ssl", "mqtt", "mqtts"}); m != "" {
			hint = fmt.Sprintf("; did you mean %s://?", m)
		}
		d.errAt(n, x.path, "%q: unknown scheme %q (want tcp:// or mqtt:// for plain MQTT, tls://, ssl:// or mqtts:// for TLS%s)", clip(s), u.Scheme, hint)
		return false
	}
	if u.User != nil {
		d.errAt(n, x.path, "%q has credentials in the URL; use uplink.username and uplink.password_file instead", clip(u.Redacted()))
		return false
	}
	if u.Hostname() == "" {
		d.errAt(n, x.path, "%q has no host (write it like %s://broker.example:%s)", clip(s), sch, map[bool]string{true: "8883", false: "1883"}[tlsScheme(sch)])
		return false
	}
	if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
		d.errAt(n, x.path, "%q needs a port (write it like %s://%s:%s)", clip(s), sch, u.Hostname(), map[bool]string{true: "8883", false: "1883"}[tlsScheme(sch)])
		return false
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		d.errAt(n, x.path, "%q: a broker URL has no path or query (write scheme://host:port)", clip(s))
		return false
	}
	return true
}

func (d *decoder) decodeUplink(fl field, u *Uplink) fields {
	f, ok := d.mapping(fl.val, fl.path, []string{"brokers", "ca", "cert", "key", "username", "password_file", "ack", "batch", "window", "backoff", "drain_rate", "quota"}, nil)
	if !ok {
		return f
	}
	u.has = f.keys()
	if x, ok := f.get("brokers"); ok {
		list, items, _ := d.strList(x, "brokers: [\"tls://broker.example:8883\"]")
		for i, s := range list {
			if d.brokerURL(items[i], s) {
				u.Brokers = append(u.Brokers, s)
			}
		}
		if n := deref(x.val); n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
			d.errAt(deref(x.val), x.path, "is empty; list at least one broker, e.g. [\"tls://broker.example:8883\"]")
		}
	} else {
		d.missing(&f, "brokers", "e.g. brokers: [\"tls://broker.example:8883\"]")
	}
	for _, k := range []struct {
		key, eg string
		dst     *string
	}{{"ca", "/etc/townlink/ca.pem", &u.CA}, {"cert", "/etc/townlink/gw.pem", &u.Cert}, {"key", "/etc/townlink/gw.key", &u.Key},
		{"password_file", "/etc/townlink/uplink.pw", &u.PasswordFile}} {
		if x, ok := f.get(k.key); ok {
			*k.dst, _ = d.absFile(x, k.eg)
		}
	}
	if x, ok := f.get("username"); ok {
		u.Username, _ = d.str(x)
	}
	if x, ok := f.get("ack"); ok {
		if s, ok := d.enum(x, "an ack mode", "broker", "platform"); ok {
			u.Ack = AckMode(s)
		}
	}
	if x, ok := f.get("batch"); ok {
		bf, ok := d.mapping(x.val, x.path, []string{"max_records", "max_bytes", "max_delay"}, nil)
		if ok {
			for k := range bf.keys() {
				u.has["batch."+k] = true
			}
			if y, ok := bf.get("max_records"); ok {
				u.Batch.MaxRecords, _ = d.integer(y, 1, 100000, "1..100000 records per message")
			}
			if y, ok := bf.get("max_bytes"); ok {
				u.Batch.MaxBytes, _ = d.size(y, KiB, 256*MiB)
			}
			if y, ok := bf.get("max_delay"); ok {
				u.Batch.MaxDelay, _ = d.duration(y, 0, time.Minute)
			}
		}
	}
	if x, ok := f.get("window"); ok {
		u.Window, _ = d.integer(x, 1, 65535, "1..65535 publishes in flight")
	}
	if x, ok := f.get("backoff"); ok {
		bf, ok := d.mapping(x.val, x.path, []string{"min", "max"}, nil)
		if ok {
			if y, ok := bf.get("min"); ok {
				u.Backoff.Min, _ = d.duration(y, 10*time.Millisecond, time.Hour)
			}
			if y, ok := bf.get("max"); ok {
				u.Backoff.Max, _ = d.duration(y, 10*time.Millisecond, 24*time.Hour)
			}
		}
	}
	if x, ok := f.get("drain_rate"); ok {
		u.DrainRate, _ = d.integer(x, 0, 100_000_000, "records per second; 0 means no limit")
	}
	if x, ok := f.get("quota"); ok {
		qf, ok := d.mapping(x.val, x.path, []string{"telemetry", "events", "alarms", "evidence"}, nil)
		if ok {
			for _, k := range []struct {
				key string
				dst *ByteSize
			}{{"telemetry", &u.Quota.Telemetry}, {"events", &u.Quota.Events}, {"alarms", &u.Quota.Alarms}, {"evidence", &u.Quota.Evidence}} {
				if y, ok := qf.get(k.key); ok {
					*k.dst, _ = d.size(y, 0, 1<<50)
				}
			}
		}
	}
	return f
}

func (d *decoder) decodeStore(fl field, s *Store) {
	f, ok := d.mapping(fl.val, fl.path, []string{"profile"}, nil)
	if !ok {
		return
	}
	if x, ok := f.get("profile"); ok {
		if v, ok := d.enum(x, "a store profile", "low-memory", "default"); ok {
			s.Profile = StoreProfile(v)
		}
	}
}

func (d *decoder) decodeFieldBroker(fl field, b *FieldBroker) fields {
	f, ok := d.mapping(fl.val, fl.path, []string{"listen", "tls_listen", "cert", "key", "max_payload", "keepalive_max", "max_pending_per_addr"}, nil)
	if !ok {
		return f
	}
	if x, ok := f.get("listen"); ok {
		b.Listen, _ = d.hostPort(x, true, "0.0.0.0:1883")
	}
	if x, ok := f.get("tls_listen"); ok {
		b.TLSListen, _ = d.hostPort(x, true, "0.0.0.0:8883")
	}
	if x, ok := f.get("cert"); ok {
		b.Cert, _ = d.absFile(x, "/etc/townlink/field.pem")
	}
	if x, ok := f.get("key"); ok {
		b.Key, _ = d.absFile(x, "/etc/townlink/field.key")
	}
	if x, ok := f.get("max_payload"); ok {
		b.MaxPayload, _ = d.size(x, KiB, ByteSize(fieldin.MaxPayload)) // a message kept raw must fit one uplink message
	}
	if x, ok := f.get("keepalive_max"); ok {
		b.KeepaliveMax, _ = d.duration(x, time.Second, 65535*time.Second)
	}
	if x, ok := f.get("max_pending_per_addr"); ok {
		b.MaxPendingPerAddr, _ = d.integer(x, 1, 100000, "1..100000 connections per address")
	}
	return f
}

func (d *decoder) decodeLine(it field, l *Line) (fields, bool) {
	f, ok := d.mapping(it.val, it.path, []string{"name", "port", "baud", "data_bits", "parity", "stop_bits", "gap"}, nil)
	if !ok {
		return f, false
	}
	if isNull(f.node) {
		d.errAt(f.node, f.path, "empty line entry; write name: and port:")
		return f, false
	}
	l.has = f.keys()
	if x, ok := f.get("name"); ok {
		l.Name, _ = d.nonEmpty(x, "a name, e.g. RS485-1")
	} else {
		d.missing(&f, "name", "the name devices refer to with line:, e.g. RS485-1")
	}
	if x, ok := f.get("port"); ok {
		l.Port, _ = d.nonEmpty(x, "a device path or board label, e.g. /dev/ttyUSB0 or RS485-1")
	} else {
		d.missing(&f, "port", "a device path or board label, e.g. /dev/ttyUSB0 or RS485-1")
	}
	if x, ok := f.get("baud"); ok {
		l.Baud, _ = d.integer(x, 1, 4_000_000, "want a positive rate such as 1200, 2400 or 9600")
	}
	if x, ok := f.get("data_bits"); ok {
		l.DataBits, _ = d.integer(x, 5, 8, "want 5..8, usually 8")
	}
	if x, ok := f.get("parity"); ok {
		if s, ok := d.str(x); ok {
			if p, err := hardware.ParseParity(s); err == nil {
				l.Parity = p
			} else {
				d.errAt(deref(x.val), x.path, "%q is not a parity (%s)", clip(s), want(s, []string{"none", "even", "odd"}))
			}
		}
	}
	if x, ok := f.get("stop_bits"); ok {
		l.StopBits, _ = d.integer(x, 1, 2, "want 1 or 2")
	}
	if x, ok := f.get("gap"); ok {
		l.Gap, _ = d.duration(x, 0, 10*time.Second)
	}
	return f, true
}
