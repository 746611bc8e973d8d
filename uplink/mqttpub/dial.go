package mqttpub

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// dial opens the network connection for paho (SetCustomOpenConnectionFn):
// plain TCP, or TLS with the handshake bounded by ConnectTimeout. Doing it
// here rather than in paho lets a refused client certificate show up as the
// broker's TLS alert (see alertConn). Proxy environment variables are not
// consulted.
func (c *Client) dial(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
	d := &net.Dialer{Timeout: c.o.ConnectTimeout, KeepAlive: 30 * time.Second}
	raw, err := d.Dial("tcp", u.Host)
	if err != nil {
		return nil, err
	}
	if !isTLS(u.String()) {
		return raw, nil
	}
	cfg, err := c.tlsConfig()
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("TLS config: %w", err)
	}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	tc := tls.Client(raw, cfg)
	_ = raw.SetDeadline(time.Now().Add(c.o.ConnectTimeout))
	if err := tc.Handshake(); err != nil {
		raw.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	_ = raw.SetDeadline(time.Time{})
	return &alertConn{Conn: tc}, nil
}

// tlsConfig is a fresh TLS config for one dial.
func (c *Client) tlsConfig() (*tls.Config, error) {
	if c.o.GetTLS != nil {
		cfg, err := c.o.GetTLS()
		if err != nil || cfg == nil {
			return nil, cmp.Or(err, errors.New("GetTLS returned no config"))
		}
		return cfg.Clone(), nil
	}
	if c.o.TLS != nil {
		return c.o.TLS.Clone(), nil
	}
	return &tls.Config{MinVersion: tls.VersionTLS12}, nil
}

// alertConn improves one error. With TLS 1.3 the broker verifies the client
// certificate after the client's side of the handshake is complete; when it
// rejects the certificate it sends an alert and closes, and the client only
// sees its first write (the CONNECT) fail with "connection reset by peer".
// If that first write fails, alertConn reads the alert, which says why
// ("remote error: tls: unknown certificate authority").
type alertConn struct {
	*tls.Conn
	wrote bool // a write has succeeded: paho's reader may be running
}

func (a *alertConn) Write(p []byte) (int, error) {
	n, err := a.Conn.Write(p)
	if err == nil {
		a.wrote = true
		return n, nil
	}
	if !a.wrote {
		_ = a.Conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		var alert tls.AlertError
		if _, rerr := a.Conn.Read(make([]byte, 1)); rerr != nil && (errors.As(rerr, &alert) || isRemoteTLSError(rerr)) {
			return n, fmt.Errorf("%w (after %v)", rerr, err)
		}
	}
	return n, err
}

// isRemoteTLSError reports a TLS alert received from the peer: crypto/tls
// returns it as a *net.OpError with Op "remote error".
func isRemoteTLSError(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && ne.Op == "remote error"
}
