package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/townlink/townlink/uplink/mqttpub"
)

// TestRunTalksToSystemd runs the gateway as systemd would with Type=notify
// and WatchdogSec= (NOTIFY_SOCKET, WATCHDOG_USEC): it says READY=1, feeds
// the watchdog while it runs, and says STOPPING=1 when stopped.
func TestRunTalksToSystemd(t *testing.T) {
	dir := t.TempDir()
	sockPath := filepath.Join(dir, "notify")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	cfg := filepath.Join(dir, "townlink.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("gateway:\n  id: gw-1\n  county: \"320583\"\n  township: \"320583104\"\n  data_dir: %q\nuplink:\n  brokers: [\"tcp://127.0.0.1:1\"]\n", filepath.Join(dir, "data"))), 0o644)
	t.Setenv("NOTIFY_SOCKET", sockPath)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer mqttpub.InstallPahoLogger(nil) // run installs paho's globals; leave them silent for the other tests
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() { done <- Main(ctx, []string{"run", "-c", cfg}, &bytes.Buffer{}, &stderr) }()
	next := func() string {
		buf := make([]byte, 64)
		_ = sock.SetReadDeadline(time.Now().Add(60 * time.Second))
		n, err := sock.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v; gateway log:\n%s", err, stderr.String())
		}
		return string(buf[:n])
	}
	if got := next(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	for range 3 {
		if got := next(); got != "WATCHDOG=1" {
			t.Fatalf("notification %q, want WATCHDOG=1", got)
		}
	}
	cancel()
	for {
		got := next()
		if got == "STOPPING=1" {
			break
		}
		if got != "WATCHDOG=1" {
			t.Fatalf("notification %q while stopping", got)
		}
	}
	if code := <-done; code != 0 {
		t.Fatalf("run = %d\n%s", code, stderr.String())
	}
}
