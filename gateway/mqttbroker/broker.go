// Package mqttbroker runs an embedded MQTT broker (mochi-mqtt): the field
// broker that recorders and kiosks publish to, and, for the demo and tests,
// a stand-in for the county broker.
package mqttbroker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Options configures a broker.
type Options struct {
	Listen    string      // host:port for plain MQTT ("" = none)
	TLSListen string      // host:port for MQTT over TLS ("" = none)
	TLS       *tls.Config // for TLSListen
	// Hooks are added before serving (authentication, persistence).
	// With no hooks every client is allowed (demo and test use only).
	Hooks      []mqtt.Hook
	MaxPayload uint32 // bytes; 0 = no limit
	Logger     *slog.Logger
}

// Broker is a running embedded broker.
type Broker struct {
	srv  *mqtt.Server
	tcp  *listeners.TCP
	tlsL *listeners.TCP
}

// ErrListen reports a listener that could not be opened.
var ErrListen = errors.New("mqttbroker: cannot listen")

// Start opens the listeners and serves in the background until Close.
func Start(o Options) (*Broker, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	caps := mqtt.NewDefaultServerCapabilities()
	// Defaults drop messages once a subscriber falls behind: a county
	// stand-in and a field broker must not.
	caps.MaximumInflight = 65535
	caps.ReceiveMaximum = 65535
	caps.MaximumClientWritesPending = 1 << 16
	caps.MaximumPacketSize = 0
	if o.MaxPayload > 0 {
		caps.MaximumPacketSize = o.MaxPayload + 1024
	}
	srv := mqtt.New(&mqtt.Options{Capabilities: caps, Logger: log, InlineClient: true})
	b := &Broker{srv: srv}
	hooks := o.Hooks
	if len(hooks) == 0 {
		hooks = []mqtt.Hook{new(auth.AllowHook)}
	}
	for _, h := range hooks {
		if err := srv.AddHook(h, nil); err != nil {
			return nil, fmt.Errorf("mqttbroker: hook %s: %w", h.ID(), err)
		}
	}
	if o.Listen != "" {
		b.tcp = listeners.NewTCP(listeners.Config{ID: "tcp", Address: o.Listen})
		if err := srv.AddListener(b.tcp); err != nil {
			return nil, fmt.Errorf("%w on %s: %w", ErrListen, o.Listen, err)
		}
	}
	if o.TLSListen != "" {
		if o.TLS == nil {
			return nil, fmt.Errorf("%w on %s: TLS listener without certificate", ErrListen, o.TLSListen)
		}
		b.tlsL = listeners.NewTCP(listeners.Config{ID: "tls", Address: o.TLSListen, TLSConfig: o.TLS})
		if err := srv.AddListener(b.tlsL); err != nil {
			srv.Close()
			return nil, fmt.Errorf("%w on %s: %w", ErrListen, o.TLSListen, err)
		}
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, fmt.Errorf("mqttbroker: serve: %w", err)
	}
	return b, nil
}

// Addr is the plain listener's address (host:port), "" if none.
func (b *Broker) Addr() string {
	if b.tcp == nil {
		return ""
	}
	return b.tcp.Address()
}

// TLSAddr is the TLS listener's address, "" if none.
func (b *Broker) TLSAddr() string {
	if b.tlsL == nil {
		return ""
	}
	return b.tlsL.Address()
}

// Server gives access to the mochi server (inline publish, hooks).
func (b *Broker) Server() *mqtt.Server { return b.srv }

// Close stops the broker.
func (b *Broker) Close() error { return b.srv.Close() }
