package scale_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/townlink/townlink/uplink/county/scale"
)

// buildCounty builds the townlink-county binary the workers run.
func buildCounty(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "townlink-county")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/townlink/townlink/uplink/cmd/townlink-county")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build townlink-county: %v\n%s", err, out)
	}
	return bin
}

// The short version of make scale: 3 gateways through a 3-node cluster into
// PostgreSQL; the stream leader and an ingest worker are killed with
// SIGKILL and restarted, the network is cut for a few seconds, and every
// seq the gateways committed must be a row (or covered by a gap record).
func TestShortCountyRunLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of a real cluster; make test runs it")
	}
	cfg := scale.Config{
		Dir: t.TempDir(), CountyBin: buildCounty(t),
		Gateways: 3, Devices: 20, Interval: 2 * time.Second, Workers: 2,
		MaxDelay: 200 * time.Millisecond, DrainRate: 200,
		BackoffMin: 500 * time.Millisecond, BackoffMax: 3 * time.Second, AckWait: 5 * time.Second,
		Duration:   40 * time.Second,
		NodeKillAt: 8 * time.Second, NodeDownFor: 5 * time.Second,
		WorkerKillAt: 18 * time.Second, WorkerDownFor: 3 * time.Second,
		OutageAt: 26 * time.Second, OutageFor: 5 * time.Second,
		DrainTimeout: time.Minute, RawFor: 2 * time.Second,
	}
	if testing.Verbose() {
		cfg.Log = os.Stderr
	}
	rep, err := scale.Run(context.Background(), cfg)
	if rep != nil {
		t.Logf("\n%s", rep)
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.Committed == 0 || rep.Lost != 0 || rep.Rows+rep.Covered != rep.Committed {
		t.Fatalf("committed %d, rows %d, covered %d, lost %d", rep.Committed, rep.Rows, rep.Covered, rep.Lost)
	}
	if rep.Remaining != 0 {
		t.Fatalf("%d records never acknowledged by the platform", rep.Remaining)
	}
	if rep.KilledNode == "" || rep.WorkerKilled.IsZero() || rep.OutageEnd.IsZero() {
		t.Fatalf("a failure was not injected: %+v", rep)
	}
	if s := rep.Summary; len(s.Problems) != 0 || s.ChainBreaks != 0 || s.Conflicts != 0 {
		t.Fatalf("audit found problems in a clean run: %v, chain breaks %d, conflicts %d", s.Problems, s.ChainBreaks, s.Conflicts)
	}
	if rep.EvidenceStreams != cfg.Gateways || rep.EvidenceOK != rep.EvidenceStreams {
		t.Fatalf("evidence audit: %d of %d OK: %v", rep.EvidenceOK, rep.EvidenceStreams, rep.EvidenceProblems)
	}
	if rep.Summary.Rows["evidence"] == 0 {
		t.Fatalf("no evidence stored: %v", rep.Summary.Rows)
	}
}
