package config

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/townlink/townlink/drivers"
)

// YAML formats the config, defaults included, in the file's own schema;
// Parse reads it back to the same Config. Call it on Redacted() before
// showing or sending it anywhere.
func (c *Config) YAML() ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	g := c.Gateway
	add(root, "gateway", mapOf(
		"id", str(g.ID), "county", quoted(g.County), "township", quoted(g.Township),
		"data_dir", str(g.DataDir), "board", optStr(g.Board), "log_level", str(strings.ToLower(g.LogLevel.String())),
		"status_interval", dur(g.StatusInterval), "metrics_listen", optQuoted(g.MetricsListen),
		"timezone", str(g.Timezone), "time_sync_at", quoted(g.TimeSyncAt), "socket", str(g.Socket)))
	u := c.Uplink
	brokers := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, b := range u.Brokers {
		brokers.Content = append(brokers.Content, quoted(b))
	}
	add(root, "uplink", mapOf(
		"brokers", brokers, "ca", optStr(u.CA), "cert", optStr(u.Cert), "key", optStr(u.Key),
		"username", optStr(u.Username), "password_file", optStr(u.PasswordFile), "ack", str(string(u.Ack)),
		"batch", flow(mapOf("max_records", num(u.Batch.MaxRecords), "max_bytes", size(u.Batch.MaxBytes), "max_delay", dur(u.Batch.MaxDelay))),
		"window", num(u.Window),
		"backoff", flow(mapOf("min", dur(u.Backoff.Min), "max", dur(u.Backoff.Max))),
		"drain_rate", num(u.DrainRate),
		"quota", flow(mapOf("telemetry", size(u.Quota.Telemetry), "events", size(u.Quota.Events),
			"alarms", size(u.Quota.Alarms), "evidence", size(u.Quota.Evidence)))))
	add(root, "store", mapOf("profile", str(string(c.Store.Profile))))
	if len(c.Lines) > 0 {
		lines := &yaml.Node{Kind: yaml.SequenceNode}
		for _, l := range c.Lines {
			lines.Content = append(lines.Content, mapOf(
				"name", quoted(l.Name), "port", quoted(l.Port), "baud", num(l.Baud), "data_bits", num(l.DataBits),
				"parity", str(l.Parity.String()), "stop_bits", num(l.StopBits), "gap", dur(l.Gap)))
		}
		add(root, "lines", lines)
	}
	fb := c.FieldBroker
	add(root, "field_broker", mapOf("listen", optQuoted(fb.Listen), "tls_listen", optQuoted(fb.TLSListen),
		"cert", optStr(fb.Cert), "key", optStr(fb.Key), "max_payload", size(fb.MaxPayload),
		"keepalive_max", optDur(fb.KeepaliveMax), "max_pending_per_addr", optNum(fb.MaxPendingPerAddr)))
	if w := c.Web; w.Listen != "" || w.PasswordFile != "" {
		add(root, "web", mapOf("listen", optQuoted(w.Listen), "password_file", optStr(w.PasswordFile)))
	}
	if len(c.Devices) > 0 {
		devs := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range c.Devices {
			devs.Content = append(devs.Content, deviceNode(&c.Devices[i]))
		}
		add(root, "devices", devs)
	}
	if rn := rulesNode(c.Rules); len(rn.Content) > 0 { // the defaults are not written
		add(root, "rules", rn)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func deviceNode(d *Device) *yaml.Node {
	n := mapOf("id", quoted(d.ID), "kind", str(string(d.Kind)), "driver", str(string(d.Driver)), "grid", optQuoted(d.Grid))
	drv := d.Driver
	if drv.Polled() || drv == DriverPulse {
		add(n, "interval", dur(d.Interval))
	}
	if drv.Polled() {
		add(n, "timeout", dur(d.Timeout))
	}
	if drv.Serial() {
		add(n, "retries", num(d.Retries))
		add(n, "line", quoted(d.Line))
	}
	switch drv {
	case DriverModbus, DriverModbusTCP:
		add(n, "unit", num(d.Unit))
		if drv == DriverModbusTCP {
			add(n, "host", quoted(d.Host))
		}
		pts := &yaml.Node{Kind: yaml.SequenceNode}
		for _, p := range d.Points {
			pn := mapOf("name", str(p.Name), "table", str(string(p.Table)), "address", num(p.Address))
			if !p.Table.Bits() {
				add(pn, "type", str(string(p.Type)))
				add(pn, "order", str(string(p.Order)))
				addDec(pn, "scale", p.Scale)
				addDec(pn, "offset", p.Offset)
			}
			pts.Content = append(pts.Content, flow(pn))
		}
		add(n, "points", pts)
	case DriverDLT645, DriverDLT645v97:
		add(n, "address", quoted(d.Address))
		add(n, "read", strSeq(d.Read))
	case DriverCJT188:
		add(n, "address", quoted(d.Address))
		add(n, "meter_type", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: "0x" + strconv.FormatInt(int64(d.MeterType), 16)})
		add(n, "di_order", quoted(d.DIOrder))
	case DriverPulse:
		add(n, "pin", quoted(d.Pin))
		add(n, "input", str(string(d.Input)))
		add(n, "debounce", dur(d.Debounce))
		addDec(n, "per_pulse", d.PerPulse)
		if d.Quantity != "" {
			add(n, "quantity", str(d.Quantity))
		}
		addDec(n, "start", d.Start)
	case DriverRecorder, DriverKiosk:
		add(n, "username", quoted(d.Username))
		add(n, "password_file", quoted(d.PasswordFile))
		if drv == DriverKiosk {
			add(n, "wait_alarm", dur(d.WaitAlarm))
		}
	}
	if len(d.Outputs) > 0 {
		add(n, "outputs", strSeq(d.Outputs))
	}
	return n
}

func mapOf(kv ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(kv); i += 2 {
		if v := kv[i+1].(*yaml.Node); v != nil {
			add(n, kv[i].(string), v)
		}
	}
	return n
}

func add(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}

func addDec(m *yaml.Node, key string, v drivers.Value) {
	if v.Kind() != drivers.KindNone {
		add(m, key, quoted(v.String()))
	}
}

func flow(n *yaml.Node) *yaml.Node { n.Style = yaml.FlowStyle; return n }

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func quoted(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.DoubleQuotedStyle}
}

func optStr(s string) *yaml.Node {
	if s == "" {
		return nil
	}
	return str(s)
}

func optQuoted(s string) *yaml.Node {
	if s == "" {
		return nil
	}
	return quoted(s)
}

func num(i int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(i)}
}

func dur(d time.Duration) *yaml.Node { return str(d.String()) }

func optDur(d time.Duration) *yaml.Node {
	if d == 0 {
		return nil
	}
	return dur(d)
}

func optNum(i int) *yaml.Node {
	if i == 0 {
		return nil
	}
	return num(i)
}

func strSeq(ss []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, s := range ss {
		n.Content = append(n.Content, str(s))
	}
	return n
}

func size(b ByteSize) *yaml.Node {
	if s := b.String(); strings.Trim(s, "0123456789") != "" {
		return str(s)
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(int64(b), 10)}
}
