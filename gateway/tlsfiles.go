package gateway

import (
	"crypto/tls"

	"github.com/townlink/townlink/gateway/certs"
)

// ErrTLS reports unusable certificate files (certs.ErrTLS).
var ErrTLS = certs.ErrTLS

// LoadTLS builds a client TLS config for mutual TLS from PEM files (see
// certs.NewClient: the key must be mode 0600; the client certificate is
// re-read at each handshake when its files change). A long-running client
// should call certs.Client.Config at each dial instead, so that a changed
// CA is used too.
func LoadTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	c, err := certs.NewClient(caFile, certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return c.Config()
}
