package fieldbroker_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/townlink/townlink/gateway/fieldbroker"
)

// writePair writes a new self-signed certificate and its key as PEM files
// and returns a pool that trusts it.
func writePair(t *testing.T, certFile, keyFile string, mtime time.Time) *x509.CertPool {
	t.Helper()
	cert, pool := selfSigned(t)
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{certFile, "CERTIFICATE", cert.Certificate[0]}, {keyFile, "PRIVATE KEY", der}} {
		tmp := f.path + ".tmp"
		if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(tmp, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			t.Fatal(err)
		}
	}
	return pool
}

func tlsConnectErr(t *testing.T, addr string, pool *x509.CertPool) error {
	t.Helper()
	o := clientOpts(addr, "u-cam-01", "pw-cam-01", "cam-01", true)
	o.Servers = nil
	o.AddBroker("ssl://" + addr).SetTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	return connectErr(t, o)
}

// A renewed certificate is used at the next handshake, without a restart.
func TestTLSCertReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "field.crt"), filepath.Join(dir, "field.key")
	t0 := time.Now().Add(-time.Hour)
	pool1 := writePair(t, certFile, keyFile, t0)
	b := startBroker(t, fieldbroker.Options{TLSListen: "127.0.0.1:0", TLSCertFile: certFile, TLSKeyFile: keyFile, Handle: newRecorder().handle})
	if err := tlsConnectErr(t, b.TLSAddr(), pool1); err != nil {
		t.Fatalf("first certificate: %v", err)
	}
	pool2 := writePair(t, certFile, keyFile, t0.Add(time.Minute))
	if err := tlsConnectErr(t, b.TLSAddr(), pool2); err != nil {
		t.Fatalf("renewed certificate not served: %v", err)
	}
	if err := tlsConnectErr(t, b.TLSAddr(), pool1); err == nil {
		t.Fatal("the old certificate is still served")
	}
	// A broken renewal keeps the last good certificate.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tlsConnectErr(t, b.TLSAddr(), pool2); err != nil {
		t.Fatalf("after a broken renewal: %v", err)
	}
	// Missing files at Start are an error.
	_, err := fieldbroker.Start(fieldbroker.Options{TLSListen: "127.0.0.1:0", TLSCertFile: filepath.Join(dir, "none"), TLSKeyFile: keyFile, Handle: newRecorder().handle})
	if !errors.Is(err, fieldbroker.ErrTLSFiles) {
		t.Fatalf("Start with a missing certificate: %v, want ErrTLSFiles", err)
	}
}
