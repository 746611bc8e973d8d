package gateway

import (
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/townlink/townlink/gateway/certs"
	"github.com/townlink/townlink/gateway/config"
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

// CheckSecrets checks every secret file the config names (the uplink
// password file and TLS key, the field broker's key, the field devices'
// password files, the local page's password file) with certs.CheckSecret,
// and reports all problems at once. New and `townlink check` call it.
func CheckSecrets(cfg *config.Config) error {
	var errs []error
	check := func(what, path string) {
		if path == "" {
			return
		}
		if err := certs.CheckSecret(path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	check("uplink.password_file", cfg.Uplink.PasswordFile)
	check("uplink.key", cfg.Uplink.Key)
	if cfg.FieldBroker.TLSListen != "" {
		check("field_broker.key", cfg.FieldBroker.Key)
	}
	for _, d := range cfg.Devices {
		check("device "+d.ID+": password_file", d.PasswordFile)
	}
	check("web.password_file", cfg.Web.PasswordFile)
	return errors.Join(errs...)
}
