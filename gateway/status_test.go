package gateway_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/firmware-sim/pulsesim"
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
	srv, err := pulsesim.Listen(path, pulsesim.ServerConfig{})
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

// getStatus GETs /status; an empty status while the gateway is not
// serving yet.
func getStatus(t *testing.T, addr string) *wire.Status {
	t.Helper()
	var st wire.Status
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		return &st
	}
	defer resp.Body.Close()
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

// selfSigned writes a self-signed certificate valid from notBefore to
// notAfter and its key (mode 0600) into dir.
func selfSigned(t *testing.T, dir, name string, notBefore, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: notBefore, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// The status and the metrics tell the days left on the uplink client
// certificate, the CA and the field broker's certificate.
func TestStatusReportsCertificateDaysLeft(t *testing.T) {
	dir := t.TempDir()
	now, day := time.Now(), 24*time.Hour
	caFile, _ := selfSigned(t, dir, "ca", now.Add(-day), now.Add(400*day+time.Hour))
	clientCert, clientKey := selfSigned(t, dir, "client", now.Add(-day), now.Add(20*day+time.Hour))
	fieldCert, fieldKey := selfSigned(t, dir, "field", now.Add(-day), now.Add(90*day+time.Hour))
	addr := freeAddr(t)
	path := writeConfig(t, dir, "ssl://127.0.0.1:1", `
- {name: RS485-1, port: /dev/null-unused, baud: 9600}`, `
- {id: door-1, kind: gpio, driver: pulse, pin: "sim:`+filepath.Join(dir, "DI3")+`", input: door}`, "  metrics_listen: \""+addr+"\"\n")
	b, _ := os.ReadFile(path)
	s := strings.Replace(string(b), "uplink:\n", "uplink:\n  ca: \""+caFile+"\"\n  cert: \""+clientCert+"\"\n  key: \""+clientKey+"\"\n", 1)
	s = strings.Replace(s, "lines:\n", "field_broker:\n  tls_listen: \""+freeAddr(t)+"\"\n  cert: \""+fieldCert+"\"\n  key: \""+fieldKey+"\"\nlines:\n", 1)
	os.WriteFile(path, []byte(s), 0o644)
	stop := runGateway(t, path)
	defer stop()

	var st *wire.Status
	waitUntil(t, "the status over HTTP", 20*time.Second, func() bool { st = getStatus(t, addr); return st.Certs != nil })
	want := map[string]int64{"uplink_ca": 400, "uplink_client": 20, "field": 90}
	for name, d := range want {
		if st.Certs[name] != d {
			t.Errorf("certs[%s] = %d, want %d (all: %v)", name, st.Certs[name], d, st.Certs)
		}
	}
	m := getMetrics(t, addr)
	for name, d := range want {
		if line := fmt.Sprintf("townlink_cert_days_left{cert=%q} %d\n", name, d); !strings.Contains(m, line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}
