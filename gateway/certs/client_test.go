package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/gateway/certs"
)

// dial makes one TLS connection with c's current config and waits for the
// server's byte (with TLS 1.3 the server judges the client certificate
// after the client's handshake is done).
func dial(t *testing.T, c *certs.Client, addr string) error {
	t.Helper()
	cfg, err := c.Config()
	if err != nil {
		return err
	}
	cfg.ServerName = "127.0.0.1"
	raw, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(raw, cfg)
	if err := tc.Handshake(); err != nil {
		return err
	}
	_, err = tc.Read(make([]byte, 1))
	return err
}

// The CA and the client certificate are both re-read when their files
// change: a client that trusted the wrong CA connects once the CA file is
// fixed, and a renewed client certificate is used at the next handshake.
func TestClientReloadsCAAndCertificate(t *testing.T) {
	now := time.Now()
	county := newCA(t, "county CA", now.Add(-time.Hour), now.Add(90*24*time.Hour))
	other := newCA(t, "some other CA", now.Add(-time.Hour), now.Add(90*24*time.Hour))
	sc, sk := county.issue(t, "broker", true, now.Add(-time.Hour), now.Add(24*time.Hour))
	server, err := tls.X509KeyPair(sc, sk)
	if err != nil {
		t.Fatal(err)
	}
	addr, names := tlsServer(t, server, county)

	dir := t.TempDir()
	caFile := write(t, dir, "ca.pem", other.pem, 0o644, 0)
	cc, ck := county.issue(t, "GW_A", false, now.Add(-time.Hour), now.Add(24*time.Hour))
	certFile := write(t, dir, "client.pem", cc, 0o644, 0)
	keyFile := write(t, dir, "client.key", ck, 0o600, 0)
	c, err := certs.NewClient(caFile, certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var unknown x509.UnknownAuthorityError
	if err := dial(t, c, addr); !errors.As(err, &unknown) {
		t.Fatalf("dial trusting the wrong CA = %v, want an unknown-authority error", err)
	}

	write(t, dir, "ca.pem", county.pem, 0o644, time.Second)
	if err := dial(t, c, addr); err != nil {
		t.Fatalf("dial after the CA file was fixed: %v", err)
	}
	if cn := <-names; cn != "GW_A" {
		t.Fatalf("server saw client %q, want GW_A", cn)
	}

	cc2, ck2 := county.issue(t, "GW_A renewed", false, now.Add(-time.Hour), now.Add(48*time.Hour))
	write(t, dir, "client.pem", cc2, 0o644, 2*time.Second)
	write(t, dir, "client.key", ck2, 0o600, 2*time.Second)
	if err := dial(t, c, addr); err != nil {
		t.Fatalf("dial after renewal: %v", err)
	}
	if cn := <-names; cn != "GW_A renewed" {
		t.Fatalf("server saw client %q after renewal, want the renewed certificate", cn)
	}

	// A broken CA file keeps the last good pool.
	write(t, dir, "ca.pem", []byte("garbage"), 0o644, 3*time.Second)
	if err := dial(t, c, addr); err != nil {
		t.Fatalf("dial after the CA file broke: %v (want the last good CA kept)", err)
	}
	<-names
}

func TestNewClientRefusesAnOpenKeyAndHalfAPair(t *testing.T) {
	now := time.Now()
	a := newCA(t, "ca", now.Add(-time.Hour), now.Add(time.Hour))
	cc, ck := a.issue(t, "gw", false, now.Add(-time.Hour), now.Add(time.Hour))
	dir := t.TempDir()
	caFile := write(t, dir, "ca.pem", a.pem, 0o644, 0)
	certFile := write(t, dir, "c.pem", cc, 0o644, 0)
	keyFile := write(t, dir, "c.key", ck, 0o640, 0)
	_, err := certs.NewClient(caFile, certFile, keyFile)
	if !errors.Is(err, certs.ErrPerm) || !strings.Contains(err.Error(), "chmod 600 "+keyFile) {
		t.Fatalf("NewClient with a 0640 key = %v, want ErrPerm naming chmod 600 %s", err, keyFile)
	}
	if _, err := certs.NewClient(caFile, certFile, ""); !errors.Is(err, certs.ErrTLS) {
		t.Fatalf("NewClient without a key = %v, want ErrTLS", err)
	}
	if _, err := certs.NewClient(write(t, dir, "bad.pem", []byte("no pem"), 0o644, 0), "", ""); !errors.Is(err, certs.ErrTLS) {
		t.Fatalf("NewClient with a CA file without PEM = %v, want ErrTLS", err)
	}
	if err := os.Chmod(keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := certs.NewClient(caFile, certFile, keyFile); err != nil {
		t.Fatalf("NewClient with a 0600 key: %v", err)
	}
}
