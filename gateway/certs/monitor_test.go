package certs_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/gateway/certs"
)

// logBuf is a concurrency-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) lines(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), sub)
}

func TestMonitorReportsDaysLeftAndConditions(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	a := newCA(t, "county CA", now.Add(-day), now.Add(400*day))
	dir := t.TempDir()
	client, _ := a.issue(t, "GW", false, now.Add(-day), now.Add(10*day+time.Hour))
	field, _ := a.issue(t, "field", true, now.Add(-day), now.Add(40*day))
	expired, _ := a.issue(t, "old", false, now.Add(-3*day), now.Add(-time.Hour))
	future, _ := a.issue(t, "future", false, now.Add(2*day), now.Add(60*day))
	other := newCA(t, "second CA", now.Add(-day), now.Add(20*day))
	bundle := append(append([]byte(nil), a.pem...), other.pem...)

	var synced = true
	var mu sync.Mutex
	var logs logBuf
	m := certs.NewMonitor(func() time.Time { return now }, func() bool { mu.Lock(); defer mu.Unlock(); return synced },
		slog.New(slog.NewTextHandler(&logs, nil)))
	m.Add("uplink_client", write(t, dir, "client.pem", client, 0o644, 0))
	m.Add("uplink_ca", write(t, dir, "ca.pem", bundle, 0o644, 0))
	m.Add("field", write(t, dir, "field.pem", field, 0o644, 0))
	m.Add("old", write(t, dir, "old.pem", expired, 0o644, 0))
	m.Add("future", write(t, dir, "future.pem", future, 0o644, 0))
	m.Add("garbage", write(t, dir, "garbage.pem", []byte("nope"), 0o644, 0))
	m.Add("unset", "")

	want := map[string]struct {
		days int64
		cond certs.Condition
	}{
		"uplink_client": {10, certs.Expiring},
		"uplink_ca":     {20, certs.Expiring}, // the bundle's first to expire
		"field":         {40, certs.Valid},
		"old":           {-1, certs.Expired},
		"future":        {60, certs.NotYetValid},
		"garbage":       {0, certs.Unreadable},
	}
	check := func() {
		t.Helper()
		rs := m.Check()
		if len(rs) != len(want) {
			t.Fatalf("%d reports, want %d", len(rs), len(want))
		}
		for _, r := range rs {
			w := want[r.Name]
			if r.DaysLeft != w.days || r.Condition != w.cond {
				t.Errorf("%s: %d days, %s; want %d days, %s (err %v)", r.Name, r.DaysLeft, r.Condition, w.days, w.cond, r.Err)
			}
		}
	}
	check()
	check() // logged once, not at every check
	if n := logs.lines(`level=WARN msg="certificate expires soon: renew it" cert=uplink_client`); n != 1 {
		t.Errorf("%d expiry warnings for the client certificate, want 1:\n%s", n, logs.b.String())
	}
	if n := logs.lines("cert=field"); n != 0 {
		t.Errorf("the field certificate with 40 days left was logged")
	}
	if n := logs.lines(`level=ERROR msg="certificate not valid yet" cert=future`); n != 1 {
		t.Errorf("not-yet-valid logged %d times, want 1", n)
	}

	// The same certificate by an unsynchronised clock: the clock is wrong.
	mu.Lock()
	synced = false
	mu.Unlock()
	want["future"] = struct {
		days int64
		cond certs.Condition
	}{60, certs.ClockUnsynced}
	check()
	if n := logs.lines(`level=WARN msg="certificate not valid yet by this clock, which is not synchronised`); n != 1 {
		t.Errorf("clock-unsynced warning logged %d times, want 1:\n%s", n, logs.b.String())
	}

	days := m.Days()
	if len(days) != 5 || days["uplink_client"] != 10 || days["old"] != -1 {
		t.Fatalf("Days = %v", days)
	}
	if _, ok := days["garbage"]; ok {
		t.Fatalf("Days reports an unreadable file: %v", days)
	}

	// A renewed file is re-read.
	renewed, _ := a.issue(t, "GW", false, now.Add(-time.Hour), now.Add(365*day))
	write(t, dir, "client.pem", renewed, 0o644, time.Second)
	if d := m.Days()["uplink_client"]; d != 365 {
		t.Fatalf("after renewal: %d days, want 365", d)
	}
}
