package config

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/townlink/townlink/hardware"
)

// valNode is the value node of key in f, or the mapping itself.
func valNode(f *fields, key string) *yaml.Node {
	if x, ok := f.m[key]; ok {
		return deref(x.val)
	}
	return f.pos()
}

// checkRefs runs the checks that span entries and sections (before
// defaults, so it can tell what the file left out).
func (d *decoder) checkRefs(c *Config, p *parsed) {
	lineByName, lineNames := d.checkLines(c, p)
	needBroker := d.checkDevices(c, p, lineByName, lineNames)
	d.checkWildcards(c, p)
	d.checkLineSettings(c, p)
	d.checkFieldBroker(c, p, needBroker)
	d.checkUplinkTLS(c, p)
}

// checkLines checks that line names and ports are unique and returns the
// lines by name.
func (d *decoder) checkLines(c *Config, p *parsed) (map[string]int, []string) {
	// Lines: unique names and ports.
	lineByName := map[string]int{}
	portBy := map[string]int{}
	for i := range c.Lines {
		l, lf := &c.Lines[i], &p.lines[i]
		if l.Name != "" {
			if j, dup := lineByName[l.Name]; dup {
				d.errAt(valNode(lf, "name"), join(lf.path, "name"), "line %q is defined twice (also at line %d); line names must be unique", l.Name, valNode(&p.lines[j], "name").Line)
			} else {
				lineByName[l.Name] = i
			}
		}
		if l.Port != "" {
			if j, dup := portBy[l.Port]; dup {
				d.errAt(valNode(lf, "port"), join(lf.path, "port"), "port %q is already used by line %q (line %d); one line per port", l.Port, c.Lines[j].Name, valNode(&p.lines[j], "port").Line)
			} else {
				portBy[l.Port] = i
			}
		}
	}
	lineNames := make([]string, 0, len(lineByName))
	for n := range lineByName {
		lineNames = append(lineNames, n)
	}
	sort.Strings(lineNames)

	return lineByName, lineNames
}

// checkDevices checks device ids, lines, credentials, pins and bus
// addresses; it returns the first device that needs the field broker (-1:
// none).
func (d *decoder) checkDevices(c *Config, p *parsed, lineByName map[string]int, lineNames []string) int {
	// Devices.
	ids := map[string]int{}
	users := map[string]int{}
	pins := map[string]int{}
	type busKey struct{ line, addr string }
	onBus := map[busKey]int{}
	needBroker := -1
	for i := range c.Devices {
		dv, df := &c.Devices[i], &p.devs[i]
		if dv.ID != "" {
			switch j, dup := ids[dv.ID]; {
			case dup:
				d.errAt(valNode(df, "id"), join(df.path, "id"), "device id %q is used twice (also at line %d); device ids must be unique", dv.ID, valNode(&p.devs[j], "id").Line)
			case dv.ID == c.Gateway.ID:
				d.errAt(valNode(df, "id"), join(df.path, "id"), "device id %q is the gateway's id, which records about the gateway itself use; pick another", dv.ID)
			default:
				ids[dv.ID] = i
			}
		}
		if dv.Line != "" {
			if _, ok := lineByName[dv.Line]; !ok {
				msg := fmt.Sprintf("no line named %q", dv.Line)
				if len(lineNames) == 0 {
					msg += " (there is no lines: section; add one with name: " + dv.Line + " and port:)"
				} else if s := didYouMean(dv.Line, lineNames); s != "" {
					msg += s
				} else {
					msg += " (lines: " + strings.Join(lineNames, ", ") + ")"
				}
				d.errAt(valNode(df, "line"), join(df.path, "line"), "%s", msg)
			}
		}
		if dv.Username != "" {
			if j, dup := users[dv.Username]; dup {
				d.errAt(valNode(df, "username"), join(df.path, "username"), "username %q is also used by device %q (line %d); each device needs its own credentials", dv.Username, c.Devices[j].ID, valNode(&p.devs[j], "username").Line)
			} else {
				users[dv.Username] = i
			}
		}
		if dv.Pin != "" {
			if j, dup := pins[dv.Pin]; dup {
				d.errAt(valNode(df, "pin"), join(df.path, "pin"), "pin %q is also used by device %q (line %d)", dv.Pin, c.Devices[j].ID, valNode(&p.devs[j], "pin").Line)
			} else {
				pins[dv.Pin] = i
			}
		}
		// One device per bus address on a line.
		if dv.Line != "" {
			var k busKey
			switch {
			case dv.Driver == DriverModbus && dv.Unit != 0:
				k = busKey{dv.Line, fmt.Sprintf("modbus unit %d", dv.Unit)}
			case dv.Address != "":
				k = busKey{dv.Line, "address " + dv.Address}
			}
			if k.addr != "" {
				key := "unit"
				if dv.Address != "" {
					key = "address"
				}
				if j, dup := onBus[k]; dup {
					d.errAt(valNode(df, key), join(df.path, key), "%s on line %q is also used by device %q (line %d); each device on a line needs its own", k.addr, dv.Line, c.Devices[j].ID, valNode(&p.devs[j], key).Line)
				} else {
					onBus[k] = i
				}
			}
		}
		if (dv.Driver == DriverRecorder || dv.Driver == DriverKiosk) && needBroker < 0 {
			needBroker = i
		}
	}
	return needBroker
}

func (d *decoder) checkWildcards(c *Config, p *parsed) {
	// A wildcard address only works for a meter alone on its line.
	for i := range c.Devices {
		dv := &c.Devices[i]
		if dv.Address == "" || strings.Trim(dv.Address, "A") != "" {
			continue
		}
		for j := range c.Devices {
			if j != i && c.Devices[j].Line == dv.Line && c.Devices[j].Driver == dv.Driver {
				df := &p.devs[i]
				d.errAt(valNode(df, "address"), join(df.path, "address"), "wildcard address %s only works for a meter alone on its line, but %q is also on line %q with driver %s; write the meter's real address", dv.Address, c.Devices[j].ID, dv.Line, dv.Driver)
				break
			}
		}
	}

}

func (d *decoder) checkLineSettings(c *Config, p *parsed) {
	// Lines whose baud or parity is left to the drivers must agree.
	for i := range c.Lines {
		l, lf := &c.Lines[i], &p.lines[i]
		if l.Name == "" || (l.has.set("baud") && l.has.set("parity")) {
			continue
		}
		type setting struct {
			baud   int
			parity hardware.Parity
		}
		var seen []string
		by := map[setting][]string{}
		for j := range c.Devices {
			dv := &c.Devices[j]
			if dv.Line != l.Name || !dv.Driver.Serial() || contains(seen, string(dv.Driver)) {
				continue
			}
			seen = append(seen, string(dv.Driver))
			b, par := driverSerial(dv.Driver)
			if l.has.set("baud") {
				b = 0
			}
			if l.has.set("parity") {
				par = 0
			}
			by[setting{b, par}] = append(by[setting{b, par}], string(dv.Driver))
		}
		if len(by) > 1 {
			var parts []string
			for _, drv := range seen {
				b, par := driverSerial(Driver(drv))
				parts = append(parts, fmt.Sprintf("%s expects %s", drv, hardware.Mode{Baud: b, Parity: par}))
			}
			var miss []string
			if !l.has.set("baud") {
				miss = append(miss, "baud")
			}
			if !l.has.set("parity") {
				miss = append(miss, "parity")
			}
			d.errAt(lf.pos(), lf.path, "the devices on line %q default to different serial settings (%s); set %s for the line", l.Name, strings.Join(parts, ", "), strings.Join(miss, " and "))
		}
	}

}

func (d *decoder) checkFieldBroker(c *Config, p *parsed, needBroker int) {
	// Field broker.
	fb := &c.FieldBroker
	if needBroker >= 0 && !fb.Enabled() {
		df := &p.devs[needBroker]
		d.errAt(df.pos(), df.path, "%s devices connect to the gateway's embedded broker; set field_broker.listen (e.g. \"0.0.0.0:1883\") or tls_listen", c.Devices[needBroker].Driver)
	}
	if fb.TLSListen != "" && (fb.Cert == "" || fb.Key == "") {
		d.errAt(valNode(&p.fb, "tls_listen"), join(p.fb.path, "tls_listen"), "needs field_broker.cert and field_broker.key (the broker's certificate and private key files)")
	}
	if fb.TLSListen == "" && (fb.Cert != "" || fb.Key != "") {
		k := "cert"
		if fb.Cert == "" {
			k = "key"
		}
		d.errAt(valNode(&p.fb, k), join(p.fb.path, k), "is set but tls_listen is not; add tls_listen (e.g. \"0.0.0.0:8883\") or remove cert and key")
	}

}

func (d *decoder) checkUplinkTLS(c *Config, p *parsed) {
	// Uplink TLS.
	u := &c.Uplink
	if p.up.node != nil {
		if u.TLS() {
			var miss []string
			for _, k := range []struct{ key, v string }{{"ca", u.CA}, {"cert", u.Cert}, {"key", u.Key}} {
				if k.v == "" {
					miss = append(miss, k.key)
				}
			}
			if len(miss) > 0 {
				at, path := p.up.pos(), p.up.path
				for i, b := range u.Brokers {
					if tlsScheme(schemeOf(b)) {
						if x, ok := p.up.get("brokers"); ok && deref(x.val).Kind == yaml.SequenceNode {
							at, path = brokerNode(deref(x.val), b), index(x.path, i)
						}
						break
					}
				}
				d.errAt(at, path, "TLS needs uplink.ca, uplink.cert and uplink.key (mutual TLS); missing %s", strings.Join(miss, ", "))
			}
		} else if len(u.Brokers) > 0 {
			for _, k := range []struct{ key, v string }{{"cert", u.Cert}, {"key", u.Key}, {"ca", u.CA}} {
				if k.v != "" {
					d.errAt(valNode(&p.up, k.key), join(p.up.path, k.key), "is set but no broker uses TLS; write the broker as tls://host:8883, or remove ca, cert and key")
					break
				}
			}
		}
		if u.PasswordFile != "" && u.Username == "" {
			d.errAt(valNode(&p.up, "password_file"), join(p.up.path, "password_file"), "needs uplink.username (MQTT sends a password only with a username)")
		}
	}
}

func brokerNode(seq *yaml.Node, url string) *yaml.Node {
	for _, c := range seq.Content {
		if c = deref(c); c != nil && c.Value == url {
			return c
		}
	}
	return seq
}

// checkDefaulted runs the checks that need the defaults applied.
func (d *decoder) checkDefaulted(c *Config, p *parsed) {
	u := &c.Uplink
	if u.Backoff.Min > u.Backoff.Max {
		if x, ok := p.up.get("backoff"); ok {
			d.errAt(deref(x.val), x.path, "min %s is more than max %s", u.Backoff.Min, u.Backoff.Max)
		}
	}
	for i := range c.Devices {
		dv, df := &c.Devices[i], &p.devs[i]
		// Retries may overrun an interval now and then (the line owner never
		// bursts to catch up), but a single timeout must fit in it.
		// Only a timeout the user wrote is refused; a derived one always
		// fits, unless the interval is too short for any reply.
		switch {
		case !dv.Driver.Polled():
		case df.has("timeout") && dv.Timeout >= dv.Interval:
			d.errAt(valNode(df, "timeout"), join(df.path, "timeout"), "timeout %s is not shorter than the interval %s; shorten the timeout or lengthen the interval", dv.Timeout, dv.Interval)
		case !df.has("timeout") && dv.Timeout >= dv.Interval:
			d.errAt(valNode(df, "interval"), join(df.path, "interval"), "interval %s is too short for this device: a reply needs up to %s at its line's speed; lengthen the interval (or raise the line's baud)", dv.Interval, dv.minTimeout.Round(time.Millisecond))
		}
		// What the file says is checked above with positions; the driver's
		// own validation runs last, only on a device with no problem found
		// yet, so that check refuses everything run would refuse.
		if !d.hasErrUnder(df.path) {
			if err := driverCheck(c, dv); err != nil {
				d.errAt(df.pos(), df.path, "%v", err)
			}
		}
	}
}

// driverCheck runs the driver's own validation of the config it will be
// given, so that check refuses everything run would refuse.
func driverCheck(c *Config, dv *Device) error {
	switch dv.Driver {
	case DriverModbus, DriverModbusTCP:
		_, err := dv.ModbusConfig()
		return err
	case DriverDLT645, DriverDLT645v97:
		mc := dv.DLT645Config(c.Gateway.Location)
		return mc.Validate()
	case DriverCJT188:
		mc := dv.CJT188Config(c.Gateway.Location)
		return mc.Validate()
	}
	return nil
}
