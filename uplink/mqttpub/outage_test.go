package mqttpub_test

import (
	"bytes"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/townlink/townlink/uplink/mqttpub"
	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
)

// lockedBuffer is a log sink the connection goroutine writes while the
// test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var reUnreachable = regexp.MustCompile(`msg="mqttpub: broker unreachable \((\d+(st|nd|rd|th)) try in a row\), next try in [0-9.]+m?s"`)

// TestUnreachableBrokerLogsOneLinePerStep: while the county broker is
// down, the client logs one line per back-off step with a repeat count and
// nothing else at Info or above; when it comes back, one line says so.
func TestUnreachableBrokerLogsOneLinePerStep(t *testing.T) {
	b := mosquittotest.Start(t)
	b.Stop()
	var logs lockedBuffer
	o := testOptions(t, b.URL)
	o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c := start(t, o)
	waitFor(t, "four back-off steps logged", func() bool {
		return len(reUnreachable.FindAllString(logs.String(), -1)) >= 4
	})
	b.Restart(t)
	waitConnected(t, c)
	waitFor(t, "the recovery logged", func() bool { return strings.Contains(logs.String(), "mqttpub: connected after ") })

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	n := 0
	for _, l := range lines {
		m := reUnreachable.FindStringSubmatch(l)
		switch {
		case m != nil:
			n++
			if want := mqttpub.Ordinal(n); m[1] != want {
				t.Errorf("step %d says %q, want %q: %s", n, m[1], want, l)
			}
			if !strings.Contains(l, "level=WARN") {
				t.Errorf("back-off line not at WARN: %s", l)
			}
		case strings.Contains(l, "mqttpub: connected after "):
			if !regexp.MustCompile(`connected after \d+ failed tries \(unreachable for \d`).MatchString(l) {
				t.Errorf("recovery line: %s", l)
			}
		default:
			t.Errorf("unexpected line while the broker was down: %s", l)
		}
	}
	if n < 4 {
		t.Fatalf("%d back-off lines, want at least 4:\n%s", n, logs.String())
	}
}
