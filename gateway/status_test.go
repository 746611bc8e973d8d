package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	simgpio "github.com/townlink/townlink/firmware-sim/gpio"
	"github.com/townlink/townlink/gateway"
	"github.com/townlink/townlink/gateway/certs"
	"github.com/townlink/townlink/gateway/config"
	hw "github.com/townlink/townlink/hardware/gpio"
	"github.com/townlink/townlink/uplink/wire"
)

// servePin serves a simulated GPIO line at path until the returned stop
// is called (which removes the socket: the gateway's pin errors).
func servePin(t *testing.T, path string) (stop func()) {
	t.Helper()
	srv, err := simgpio.Listen(path, simgpio.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ctx, func(func(hw.Edge) bool) {})
	}()
	var stopped bool
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

func getStatus(t *testing.T, addr string) *wire.Status {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st wire.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func getMetrics(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func waitUntil(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !ok() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A pulse device whose GPIO pin errors is reported down, in the status
// and in the metrics, and ok again once the pin is back.
func TestStatusPulseDeviceDownWhenItsPinErrors(t *testing.T) {
	dir := t.TempDir()
	pin := filepath.Join(dir, "DI3")
	stopPin := servePin(t, pin)
	addr := freeAddr(t)
	path := writeConfig(t, dir, "tcp://127.0.0.1:1", `
- {name: RS485-1, port: /dev/null-unused, baud: 9600}`, `
- {id: door-1, kind: gpio, driver: pulse, pin: "sim:`+pin+`", input: door}`, "  metrics_listen: \""+addr+"\"\n")
	stop := runGateway(t, path)
	defer stop()

	waitUntil(t, "door-1 ok", 20*time.Second, func() bool { return getStatus(t, addr).Devices["door-1"] == "ok" })
	if m := getMetrics(t, addr); !strings.Contains(m, `townlink_device_state{device="door-1"} 2`+"\n") {
		t.Fatalf("metrics while the pin works:\n%s", m)
	}
	stopPin()
	waitUntil(t, "door-1 down", 20*time.Second, func() bool { return getStatus(t, addr).Devices["door-1"] == "down" })
	m := getMetrics(t, addr)
	for _, want := range []string{`townlink_device_state{device="door-1"} 0`, `townlink_device_up{device="door-1"} 0`} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("/metrics lacks %s:\n%s", want, m)
		}
	}
	servePin(t, pin)
	waitUntil(t, "door-1 ok again", 20*time.Second, func() bool { return getStatus(t, addr).Devices["door-1"] == "ok" })
}

// A password file that group or others can read stops the gateway at
// start, with the chmod to run.
func TestStatusOpenSecretRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "uplink.pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, dir, "tcp://127.0.0.1:1", `
- {name: RS485-1, port: /dev/null-unused, baud: 9600}`, `
- {id: door-1, kind: gpio, driver: pulse, pin: "sim:`+filepath.Join(dir, "DI3")+`", input: door}`)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(b), "uplink:\n", "uplink:\n  username: gw-test-01\n  password_file: \""+pw+"\"\n", 1)), 0o644)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = gateway.New(cfg, nil)
	if !errors.Is(err, certs.ErrPerm) || !strings.Contains(err.Error(), "chmod 600 "+pw) {
		t.Fatalf("New with a 0644 password file = %v, want ErrPerm naming chmod 600 %s", err, pw)
	}
}
