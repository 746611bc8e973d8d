package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/gateway/sdnotify"
)

// TestWatchdogFedOnlyWhileHealthy: READY first, one WATCHDOG per healthy
// check and none for a failed one, STOPPING last — read from a real
// unixgram socket as systemd's.
func TestWatchdogFedOnlyWhileHealthy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	n, err := sdnotify.FromEnv(func(k string) string {
		return map[string]string{"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000"}[k]
	}, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Checks answer ok, fail, fail, ok, ok, ok; then the run ends.
	answers := []error{nil, errors.New("disk gone"), errors.New("disk gone"), nil, nil, nil}
	var mu sync.Mutex
	calls := 0
	ctx, cancel := context.WithCancel(context.Background())
	healthy := func() error {
		mu.Lock()
		defer mu.Unlock()
		if calls >= len(answers) {
			cancel()
			return errors.New("done")
		}
		calls++
		return answers[calls-1]
	}
	done := make(chan error, 1)
	go func() { done <- feedWatchdog(ctx, n, slog.New(slog.NewTextHandler(io.Discard, nil)), healthy) }()
	var got []string
	buf := make([]byte, 64)
	for len(got) == 0 || got[len(got)-1] != sdnotify.Stopping {
		_ = sock.SetReadDeadline(time.Now().Add(30 * time.Second))
		k, err := sock.Read(buf)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, string(buf[:k]))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []string{sdnotify.Ready, sdnotify.Watchdog, sdnotify.Watchdog, sdnotify.Watchdog, sdnotify.Watchdog, sdnotify.Stopping}
	if len(got) != len(want) {
		t.Fatalf("datagrams %q, want %q (one WATCHDOG per healthy check)", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("datagrams %q, want %q", got, want)
		}
	}
}
