package gateway

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
var ErrTLS = errors.New("tls files")

// LoadTLS builds a client TLS config for mutual TLS from PEM files. The
// client certificate is re-read whenever its files change, so a renewed
// certificate is used at the next connection without a restart.
func LoadTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("%w: ca: %w", ErrTLS, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: ca %s holds no PEM certificate", ErrTLS, caFile)
		}
		tc.RootCAs = pool
	}
	if certFile == "" && keyFile == "" {
		return tc, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("%w: mutual TLS needs both cert and key", ErrTLS)
	}
	r := &certReloader{cert: certFile, key: keyFile}
	if _, err := r.get(); err != nil {
		return nil, err
	}
	tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return r.get() }
	return tc, nil
}

type certReloader struct {
	cert, key string
	mu        sync.Mutex
	mtime     time.Time
	c         *tls.Certificate
}

func (r *certReloader) get() (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var newest time.Time
	for _, f := range []string{r.cert, r.key} {
		st, err := os.Stat(f)
		if err != nil {
			if r.c != nil {
				return r.c, nil // keep the last good one
			}
			return nil, fmt.Errorf("%w: %w", ErrTLS, err)
		}
		if st.ModTime().After(newest) {
			newest = st.ModTime()
		}
	}
	if r.c != nil && !newest.After(r.mtime) {
		return r.c, nil
	}
	c, err := tls.LoadX509KeyPair(r.cert, r.key)
	if err != nil {
		if r.c != nil {
			return r.c, nil
		}
		return nil, fmt.Errorf("%w: %s / %s: %w", ErrTLS, r.cert, r.key, err)
	}
	r.c, r.mtime = &c, newest
	return r.c, nil
}
