package mqttpub_test

import (
	"crypto/tls"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/townlink/townlink/uplink/mqttpub"
	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
)

func TestMutualTLS(t *testing.T) {
	ca := mosquittotest.NewCA(t, "county CA")
	srvCert, srvKey := ca.Server(t)
	b := mosquittotest.Start(t, mosquittotest.WithTLS(ca.CertPEM, srvCert, srvKey, true))
	if !strings.HasPrefix(b.URL, "ssl://") {
		t.Fatalf("TLS broker URL %q", b.URL)
	}
	tlsFor := func(certs ...tls.Certificate) *tls.Config {
		return &tls.Config{RootCAs: ca.Pool(), Certificates: certs, MinVersion: tls.VersionTLS12}
	}
	sub := subscribe(t, b.URL, tlsFor(ca.Client(t, "platform")), "t/tls")

	t.Run("valid client certificate", func(t *testing.T) {
		o := testOptions(t, b.URL)
		o.TLS = tlsFor(ca.Client(t, o.ClientID))
		c := start(t, o)
		waitConnected(t, c)
		if err := c.Publish(t.Context(), "t/tls", []byte("over mTLS")); err != nil {
			t.Fatal(err)
		}
		if m := sub.next(t); string(m.payload) != "over mTLS" {
			t.Errorf("got %q", m.payload)
		}
	})

	other := mosquittotest.NewCA(t, "some other CA")
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		want string // in the error
	}{
		{"no client certificate", tlsFor(), "no client certificate configured"},
		{"certificate from another CA", tlsFor(other.Client(t, "intruder")), "remote error: tls: unknown certificate authority"},
		{"server not trusted", &tls.Config{RootCAs: other.Pool(), Certificates: []tls.Certificate{ca.Client(t, "gw")}}, "certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions(t, b.URL)
			o.TLS = tc.cfg
			c := start(t, o)
			waitFor(t, "a refused connection", func() bool { return c.LastError() != nil })
			err := c.LastError()
			t.Logf("LastError: %v", err)
			var ce *mqttpub.ConnectError
			if !errors.As(err, &ce) || ce.Broker != b.URL || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LastError = %v, want a *ConnectError for %s mentioning %q", err, b.URL, tc.want)
			}
			if c.Connected() {
				t.Error("connected")
			}
			if err := c.Publish(t.Context(), "t/tls", []byte("x")); !errors.Is(err, mqttpub.ErrNotConnected) {
				t.Errorf("Publish = %v, want ErrNotConnected", err)
			}
		})
	}
}

// GetTLS is asked for a config at every dial: a client that first trusts
// the wrong CA connects once GetTLS hands out the right one.
func TestGetTLSAtEveryDial(t *testing.T) {
	ca := mosquittotest.NewCA(t, "county CA")
	other := mosquittotest.NewCA(t, "some other CA")
	srvCert, srvKey := ca.Server(t)
	b := mosquittotest.Start(t, mosquittotest.WithTLS(ca.CertPEM, srvCert, srvKey, true))
	o := testOptions(t, b.URL)
	client := ca.Client(t, o.ClientID)
	var mu sync.Mutex
	pool, calls := other.Pool(), 0
	o.GetTLS = func() (*tls.Config, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{client}, MinVersion: tls.VersionTLS12}, nil
	}
	c := start(t, o)
	waitFor(t, "a refused connection", func() bool { return c.LastError() != nil })
	if err := c.LastError(); !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("LastError = %v, want an untrusted server", err)
	}
	mu.Lock()
	pool = ca.Pool()
	mu.Unlock()
	waitConnected(t, c)
	mu.Lock()
	defer mu.Unlock()
	if calls < 2 {
		t.Fatalf("GetTLS called %d times, want once per dial (≥ 2)", calls)
	}
}
