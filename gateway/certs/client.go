package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// ErrTLS reports unusable certificate files.
var ErrTLS = errors.New("certs: tls files")

// Client is a TLS client whose CA and client certificate files are re-read
// when they change. A file that becomes unreadable or invalid keeps the
// last good version in use.
type Client struct {
	ca, cert, key string

	mu    sync.Mutex
	caMod time.Time
	pool  *x509.CertPool
	pair  *KeyPair // nil without mutual TLS
}

// NewClient loads the CA (may be "": the system roots) and, for mutual
// TLS, the certificate and key (both or neither). The key file must pass
// CheckSecret.
func NewClient(caFile, certFile, keyFile string) (*Client, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("%w: mutual TLS needs both cert and key", ErrTLS)
	}
	c := &Client{ca: caFile, cert: certFile, key: keyFile}
	if keyFile != "" {
		if err := CheckSecret(keyFile); err != nil {
			return nil, err
		}
	}
	if _, err := c.roots(); err != nil {
		return nil, err
	}
	if certFile != "" {
		kp, err := NewKeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		c.pair = kp
	}
	return c, nil
}

// Config returns a TLS config with the current CA; its client certificate
// is re-read at each handshake if its files changed. Give it to
// mqttpub.Options.GetTLS.
func (c *Client) Config() (*tls.Config, error) {
	pool, err := c.roots()
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	if c.cert != "" {
		tc.GetClientCertificate = c.clientCert
	}
	return tc, nil
}

// newest is the latest modification time of files.
func newest(files ...string) (time.Time, error) {
	var t time.Time
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return t, err
		}
		if st.ModTime().After(t) {
			t = st.ModTime()
		}
	}
	return t, nil
}

// roots is the CA pool, re-read when the CA file changed.
func (c *Client) roots() (*x509.CertPool, error) {
	if c.ca == "" {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	mod, err := newest(c.ca)
	if err == nil && c.pool != nil && !mod.After(c.caMod) {
		return c.pool, nil
	}
	if err == nil {
		var pem []byte
		if pem, err = os.ReadFile(c.ca); err == nil {
			pool := x509.NewCertPool()
			if pool.AppendCertsFromPEM(pem) {
				c.pool, c.caMod = pool, mod
				return pool, nil
			}
			err = errors.New("holds no PEM certificate")
		}
	}
	if c.pool != nil {
		return c.pool, nil // keep the last good one
	}
	return nil, fmt.Errorf("%w: ca %s: %w", ErrTLS, c.ca, err)
}

// clientCert is the client certificate, re-read when its files changed.
func (c *Client) clientCert(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return c.pair.Get()
}

// LoadClient is a one-off TLS config for a short-lived client (townlink
// tail): NewClient, then Config. A long-running client calls Config at
// each dial instead, so that a changed CA is used too.
func LoadClient(caFile, certFile, keyFile string) (*tls.Config, error) {
	c, err := NewClient(caFile, certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return c.Config()
}
