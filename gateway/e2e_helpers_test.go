package gateway_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/uplink/mqttpub"
	"github.com/townlink/townlink/uplink/wire"
)

// platform is the county side of a test: it subscribes to the uplink and
// decodes every batch with uplink/wire, as a real platform would.
type platform struct {
	t      *testing.T
	mu     sync.Mutex
	audit  *wire.Audit
	recs   map[string][]wire.Record // by stream
	status *wire.Status
	bad    []string
}

func newPlatform(t *testing.T, brokerURL string) *platform {
	t.Helper()
	p := &platform{t: t, audit: wire.NewAudit(), recs: map[string][]wire.Record{}}
	c, err := mqttpub.New(mqttpub.Options{Brokers: []string{brokerURL}, ClientID: fmt.Sprintf("platform-%d", time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); c.Close() })
	c.Start(ctx)
	if err := c.Subscribe(ctx, "townlink/v1/#", p.handle); err != nil {
		t.Fatal(err)
	}
	p.waitFor("platform subscribed", 20*time.Second, c.Connected)
	return p
}

// handle decodes a message the way a platform must: by topic identity (a
// payload whose gw/stream differ from its topic is refused), statuses
// into the audit too.
func (p *platform) handle(topic string, payload []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _, _, stream, err := wire.ParseTopic(topic)
	if err != nil {
		p.bad = append(p.bad, err.Error())
		return
	}
	switch stream {
	case wire.StreamStatus:
		st, err := wire.DecodeStatusTopic(topic, payload)
		if err != nil {
			p.bad = append(p.bad, err.Error())
			return
		}
		p.status = st
		p.audit.AddStatus(st)
		return
	case wire.StreamCmd, wire.StreamCmdResult, wire.StreamAck:
		return
	}
	b, err := wire.DecodeTopic(topic, payload)
	if err != nil {
		p.bad = append(p.bad, err.Error())
		return
	}
	p.audit.Add(b)
	p.recs[b.Stream] = append(p.recs[b.Stream], b.Recs...)
}

// trust registers a gateway's public key: evidence signatures are checked.
func (p *platform) trust(gw string, v wire.Verifier) {
	p.audit.TrustKey(gw, v)
}

// records returns a copy of a stream's records from one device.
func (p *platform) records(stream, dev string) []wire.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []wire.Record
	for _, r := range p.recs[stream] {
		if r.Dev == dev {
			out = append(out, r)
		}
	}
	return out
}

func (p *platform) waitFor(what string, d time.Duration, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// latest returns the newest record of a device on a stream.
func (p *platform) latest(stream, dev string) (wire.Record, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rs := p.recs[stream]
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].Dev == dev {
			return rs[i], true
		}
	}
	return wire.Record{}, false
}

func (p *platform) deviceState(dev string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status == nil {
		return ""
	}
	return p.status.Devices[dev]
}

func (p *platform) report() wire.Report {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.audit.Report()
}

// settledReport is the audit once it is OK, or the last one after d. A
// status announces a stream's last seq as soon as the record is queued, so
// right after an event the announced tail can be a moment ahead of what
// has arrived; a record that never arrives still fails the audit.
func (p *platform) settledReport(d time.Duration) wire.Report {
	deadline := time.Now().Add(d)
	for {
		rep := p.report()
		if rep.OK() || time.Now().After(deadline) {
			return rep
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *platform) malformed() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.bad...)
}

// writeConfig writes a gateway config into dir with the given lines and
// devices sections, and returns its path.
func writeConfig(t *testing.T, dir, broker, lines, devices string, gatewayExtra ...string) string {
	t.Helper()
	cfg := fmt.Sprintf(`gateway:
  id: gw-test-01
  county: "320583"
  township: "320583104"
  data_dir: %q
  status_interval: 1s
`+strings.Join(gatewayExtra, "")+`uplink:
  brokers: [%q]
  backoff: {min: 100ms, max: 1s}
lines:
%s
devices:
%s
`, filepath.Join(dir, "data"), broker, indent(lines), indent(devices))
	path := filepath.Join(dir, "townlink.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func indent(s string) string {
	s = strings.Trim(s, "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n")
}
