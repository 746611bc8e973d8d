package localapi

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serialsim"
	"github.com/townlink/townlink/uplink/wire"
)

// lineOwner runs jobs one at a time on a port, as bus.Line does.
type lineOwner struct {
	p    hardware.Port
	jobs int
}

func (l *lineOwner) Do(ctx context.Context, fn func(ctx context.Context, p hardware.Port) error) error {
	l.jobs++
	return fn(context.Background(), l.p)
}

func scanService(t *testing.T, scan Scanner) (*Client, *lineOwner) {
	t.Helper()
	a, err := serialsim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	cfg, err := config.Parse("t.yaml", []byte(`gateway: {id: gw-1, county: "320583", township: "320583104", data_dir: /srv/tl}
uplink: {brokers: ["tcp://127.0.0.1:1883"]}
lines: [{name: RS485-1, port: /dev/ttyS9, baud: 2400, parity: even}]
`))
	if err != nil {
		t.Fatal(err)
	}
	lo := &lineOwner{p: a}
	svc, err := New(Sources{Config: cfg, Snapshot: func() *wire.Status { return &wire.Status{} },
		LineJobs: map[string]Doer{"RS485-1": lo}, Scan: scan})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "t.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, svc.Handler()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return NewClient(path), lo
}

// A scan runs as one job on the line's owner, with the line's mode; its
// progress and result stream back to the client.
func TestScanRunsOnTheLineOwnerAndStreamsProgress(t *testing.T) {
	var gotMode hardware.Mode
	var gotPort hardware.Port
	var gotOpts ScanOptions
	c, lo := scanService(t, func(ctx context.Context, p hardware.Port, mode hardware.Mode, opts ScanOptions, progress func(Progress)) ([]Found, error) {
		gotMode, gotPort, gotOpts = mode, p, opts
		for i := 1; i <= 3; i++ {
			progress(Progress{Done: i, Total: 3, Note: "address"})
		}
		return []Found{{Protocol: "dlt645", Address: "218231000114", Serial: "2400 8E1"}}, nil
	})
	var steps []int
	found, err := c.Scan(context.Background(), "RS485-1", ScanOptions{Baud: "auto", Protocols: []string{"dlt645", "cjt188"}}, func(p Progress) { steps = append(steps, p.Done) })
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].Address != "218231000114" || len(steps) != 3 || steps[2] != 3 {
		t.Fatalf("found %+v, progress %v", found, steps)
	}
	if gotOpts.Baud != "auto" || strings.Join(gotOpts.Protocols, ",") != "dlt645,cjt188" {
		t.Errorf("options %+v reached the scanner", gotOpts)
	}
	if lo.jobs != 1 || gotMode.String() != "2400 8E1" || gotPort != lo.p {
		t.Errorf("jobs %d, mode %v, port %v: want one job on the line's port at 2400 8E1", lo.jobs, gotMode, gotPort)
	}
}

// Giving up (Ctrl-C) stops the scan inside the line's job: the line goes
// back to polling, and what was found so far is reported.
func TestScanStopsWhenTheClientGivesUp(t *testing.T) {
	stopped := make(chan error, 1)
	c, _ := scanService(t, func(ctx context.Context, p hardware.Port, mode hardware.Mode, opts ScanOptions, progress func(Progress)) ([]Found, error) {
		progress(Progress{Done: 1, Total: 247})
		<-ctx.Done()
		stopped <- ctx.Err()
		return []Found{{Protocol: "modbus", Address: "1"}}, ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	_, err := c.Scan(ctx, "RS485-1", ScanOptions{}, func(Progress) { cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("client err %v", err)
	}
	select {
	case err := <-stopped:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("scan ctx ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the scan went on after the client left")
	}
}

func TestScanErrors(t *testing.T) {
	c, _ := scanService(t, nil)
	if _, err := c.Scan(context.Background(), "RS485-1", ScanOptions{}, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("scan without a scanner: %v", err)
	}
	if _, err := c.Scan(context.Background(), "RS485-7", ScanOptions{}, nil); !errors.Is(err, ErrUnknown) {
		t.Errorf("scan of an unknown line: %v", err)
	}
	var ae *AnswerError
	_, err := c.Read(context.Background(), "")
	if !errors.As(err, &ae) || ae.Code != 400 || !errors.Is(err, ErrBadRequest) {
		t.Errorf("read without a device: %v", err)
	}
}

func TestHandlerStatusIsJSON(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte(`gateway: {id: gw-1, county: "320583", township: "320583104"}
uplink: {brokers: ["tcp://127.0.0.1:1883"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Sources{Config: cfg, Snapshot: func() *wire.Status {
		return &wire.Status{GW: "gw-1", Backlog: map[string]uint64{"telemetry": 5}, Certs: map[string]int64{"uplink_client": 12}}
	}, Alarms: func() []Alarm { return []Alarm{{Device: "m1", Rule: "overvoltage", Severity: "major"}} }})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/status", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	st := svc.Status(context.Background())
	if st.Uplink.Backlog != 5 || len(st.Alarms) != 1 || st.Certs[0] != (Cert{"uplink_client", 12}) {
		t.Errorf("status %+v", st)
	}
}

func TestListenRefusesATooLongPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), strings.Repeat("s", 120)+".sock")
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "set gateway.socket to a shorter one") {
		t.Fatalf("Listen(%d bytes): %v", len(path), err)
	}
}

func TestListenMakesTheSocketsDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "townlink", "t.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != SocketMode {
		t.Fatalf("socket %v, %v", fi, err)
	}
}
