package fieldbroker

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// Errors. Every error the package returns wraps one of these.
var (
	// ErrConfig reports invalid Options.
	ErrConfig = errors.New("fieldbroker: invalid options")
	// ErrListen reports a listener that could not be opened.
	ErrListen = errors.New("fieldbroker: cannot listen")
	// ErrTopic reports a topic outside field/{device-id}/{event} or outside
	// the publishing device's own prefix.
	ErrTopic = errors.New("fieldbroker: topic not allowed")
	// ErrRejected is wrapped by a Handler for a message that can never be
	// accepted (malformed, wrong schema): the broker acknowledges it, drops
	// it and counts it, so the device does not resend it forever.
	ErrRejected = errors.New("fieldbroker: message rejected")
	// ErrUnknownDevice reports a device id that is not configured.
	ErrUnknownDevice = errors.New("fieldbroker: unknown device")
	// ErrClosed reports a call on a closed broker.
	ErrClosed = errors.New("fieldbroker: broker closed")
)

// Event names the broker itself passes to Handle.
const (
	// EventOffline is passed (with a nil payload) when a device's last
	// connection ends uncleanly: network loss, keepalive timeout, protocol
	// error, oversized packet. Not after a clean DISCONNECT, not when the
	// same device is still connected on another connection (session
	// take-over), not when the broker itself closes the connection.
	EventOffline = "offline"
)

// DefaultMaxPayload is used when Options.MaxPayload is 0.
const DefaultMaxPayload = 256 << 10

// sessionExpiry bounds how long mochi keeps the session of a disconnected
// persistent (CleanSession=false) client: its downlink subscription and
// unacknowledged downlink messages. mochi's default is forever.
const sessionExpiry = 7 * 24 * 3600 // seconds

// Device is one recorder or kiosk allowed to log in.
type Device struct {
	ID       string // topic level: [A-Za-z0-9._-]{1,64}
	Username string
	Password []byte // read from password_file by the caller
}

// Handler takes one message of a device. It returns nil once the message's
// readings are durably queued; only then does the device get its PUBACK.
// An error wrapping ErrRejected means "never acceptable": the message is
// acknowledged and dropped. Any other error is transient: the message is
// not acknowledged and the device's connection is closed so that it resends.
// The payload must not be modified. Handle runs on the device's connection
// goroutine: it may block that device (and only that device); it should
// return when ctx is cancelled (the broker is closing).
type Handler func(ctx context.Context, deviceID, event string, payload []byte) error

// Options configures a broker.
type Options struct {
	Listen    string      // host:port for plain MQTT ("" = none)
	TLSListen string      // host:port for MQTT over TLS ("" = none)
	TLS       *tls.Config // required with TLSListen
	Devices   []Device
	// MaxPayload in bytes (0 = DefaultMaxPayload). A larger publish is
	// refused and counted: up to twice the limit it is read, acknowledged
	// and dropped (a device must not resend it forever); a packet beyond
	// that is not even read: mochi closes the connection.
	MaxPayload int
	Handle     Handler
	Logger     *slog.Logger // nil = discard
}

// Broker is a running field broker.
type Broker struct {
	srv   *mqtt.Server
	tcp   *listener // nil if no plain listener
	tlsL  *listener // nil if no TLS listener
	log   *slog.Logger
	h     Handler
	ctx   context.Context // lifetime of the broker; cancelled by Close
	stop  context.CancelFunc
	max   int
	dummy [sha256.Size]byte // compared against for unknown users

	byUser map[string]*device // read-only after Start
	byID   map[string]*device // read-only after Start
	total  counters

	mu   sync.Mutex
	live map[*device]map[*mqtt.Client]struct{} // connections that have a session

	closing   atomic.Bool
	closeOnce sync.Once
}

type device struct {
	id     string
	user   string
	pwHash [sha256.Size]byte
	log    *slog.Logger
	c      counters
}

// Start validates o, opens the listeners and serves in the background until
// Close.
func Start(o Options) (*Broker, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	maxPayload := o.MaxPayload
	if maxPayload == 0 {
		maxPayload = DefaultMaxPayload
	}
	b := &Broker{
		log:    log,
		h:      o.Handle,
		max:    maxPayload,
		byUser: make(map[string]*device, len(o.Devices)),
		byID:   make(map[string]*device, len(o.Devices)),
		live:   make(map[*device]map[*mqtt.Client]struct{}),
		dummy:  sha256.Sum256([]byte("fieldbroker: no such user")),
	}
	b.ctx, b.stop = context.WithCancel(context.Background())
	for _, d := range o.Devices {
		dv := &device{id: d.ID, user: d.Username, pwHash: sha256.Sum256(d.Password), log: log.With("device", d.ID)}
		b.byUser[d.Username] = dv
		b.byID[d.ID] = dv
	}

	caps := mqtt.NewDefaultServerCapabilities()
	// mochi's defaults drop messages once a client falls behind; the field
	// broker must not (DESIGN.md, library facts).
	caps.MaximumInflight = 65535
	caps.ReceiveMaximum = 65535
	caps.MaximumClientWritesPending = 4096 // queued deliveries (downlink commands); PUBACKs are written directly
	caps.MaximumSessionExpiryInterval = sessionExpiry
	caps.MaximumPacketSize = wireLimit(maxPayload)
	srv := mqtt.New(&mqtt.Options{Capabilities: caps, Logger: log.With("component", "mochi"), InlineClient: true})
	b.srv = srv
	if err := srv.AddHook(&hook{b: b}, nil); err != nil {
		return nil, fmt.Errorf("fieldbroker: add hook: %w", err)
	}
	for _, ln := range []struct {
		id, addr string
		tls      *tls.Config
		dst      **listener
	}{{"field-tcp", o.Listen, nil, &b.tcp}, {"field-tls", o.TLSListen, o.TLS, &b.tlsL}} {
		if ln.addr == "" {
			continue
		}
		l, err := listen(ln.id, ln.addr, ln.tls, &srv.Listeners.ClientsWg)
		if err == nil {
			*ln.dst = l // before AddListener: shutdownListeners must see it
			err = srv.AddListener(l)
		}
		if err != nil {
			b.stop()
			b.shutdownListeners()
			_ = srv.Close()
			return nil, fmt.Errorf("%w on %s: %w", ErrListen, ln.addr, err)
		}
	}
	if err := srv.Serve(); err != nil {
		b.stop()
		b.shutdownListeners()
		_ = srv.Close()
		return nil, fmt.Errorf("fieldbroker: serve: %w", err)
	}
	return b, nil
}

// wireLimit is mochi's MaximumPacketSize for a payload limit: room for
// twice the payload plus the largest topic and properties, capped at
// MQTT's maximum (256 MiB).
func wireLimit(maxPayload int) uint32 {
	n := int64(maxPayload)*2 + 70<<10
	if n > 268435455 {
		n = 268435455
	}
	return uint32(n)
}

func (o *Options) validate() error {
	if o.Listen == "" && o.TLSListen == "" {
		return fmt.Errorf("%w: no listener (set Listen or TLSListen)", ErrConfig)
	}
	if o.TLSListen != "" && o.TLS == nil {
		return fmt.Errorf("%w: TLSListen %s without a TLS config", ErrConfig, o.TLSListen)
	}
	if o.Handle == nil {
		return fmt.Errorf("%w: no Handle function", ErrConfig)
	}
	if o.MaxPayload < 0 {
		return fmt.Errorf("%w: MaxPayload %d is negative", ErrConfig, o.MaxPayload)
	}
	ids := make(map[string]bool, len(o.Devices))
	users := make(map[string]bool, len(o.Devices))
	for i, d := range o.Devices {
		if err := checkDeviceID(d.ID); err != nil {
			return fmt.Errorf("%w: device %d (%q): %w", ErrConfig, i, d.ID, err)
		}
		if d.Username == "" {
			return fmt.Errorf("%w: device %q: empty username", ErrConfig, d.ID)
		}
		if len(d.Password) == 0 {
			return fmt.Errorf("%w: device %q: empty password", ErrConfig, d.ID)
		}
		if ids[d.ID] {
			return fmt.Errorf("%w: device id %q appears twice", ErrConfig, d.ID)
		}
		if users[d.Username] {
			return fmt.Errorf("%w: device %q: username %q already used by another device", ErrConfig, d.ID, d.Username)
		}
		ids[d.ID], users[d.Username] = true, true
	}
	return nil
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

// Command publishes payload (QoS 1, not retained) to the device's downlink
// topic field/{id}/cmd. Only a connected device subscribed to it gets it;
// a persistent session that is offline gets it on reconnect while mochi
// keeps the session. It returns once mochi has queued it, not once the
// device has acknowledged it.
func (b *Broker) Command(deviceID string, payload []byte) error {
	if b.closing.Load() {
		return ErrClosed
	}
	if _, ok := b.byID[deviceID]; !ok {
		return fmt.Errorf("%w: %q", ErrUnknownDevice, deviceID)
	}
	if err := b.srv.Publish(CmdTopic(deviceID), payload, false, 1); err != nil {
		return fmt.Errorf("fieldbroker: command to %q: %w", deviceID, err)
	}
	return nil
}

// Close stops accepting, cancels the context of running Handle calls,
// drops connections that have not logged in, disconnects every client and
// waits for their goroutines (mochi's Close waits for them). Calling it
// again does nothing.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.closing.Store(true)
		b.stop()
		b.shutdownListeners()
		_ = b.srv.Close() // always nil in v2.7.9; waits for client goroutines
	})
	return nil
}

func (b *Broker) shutdownListeners() {
	for _, l := range []*listener{b.tcp, b.tlsL} {
		if l != nil {
			l.shutdown()
		}
	}
}

// Online reports, for every configured device, whether it is connected now.
func (b *Broker) Online() map[string]bool {
	out := make(map[string]bool, len(b.byID))
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, d := range b.byID {
		out[id] = b.liveLocked(d, nil)
	}
	return out
}

// deviceOf is the device a client logged in as (nil for the inline client).
func (b *Broker) deviceOf(cl *mqtt.Client) *device {
	if cl == nil || cl.Net.Inline {
		return nil
	}
	return b.byUser[string(cl.Properties.Username)]
}

func (b *Broker) addLive(d *device, cl *mqtt.Client) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.live[d]
	if m == nil {
		m = make(map[*mqtt.Client]struct{})
		b.live[d] = m
	}
	m[cl] = struct{}{}
}

// dropLive removes cl and reports whether the device is still connected on
// another connection.
func (b *Broker) dropLive(d *device, cl *mqtt.Client) (stillOnline bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.live[d], cl)
	return b.liveLocked(d, cl)
}

// liveLocked reports whether d has an open connection other than except.
// Closed connections whose goroutine never reached OnDisconnect (mochi
// returns early when the CONNACK cannot be written) are pruned here.
func (b *Broker) liveLocked(d *device, except *mqtt.Client) bool {
	online := false
	for c := range b.live[d] {
		if c == except {
			continue
		}
		if c.Closed() {
			delete(b.live[d], c)
			continue
		}
		online = true
	}
	return online
}

// stillOnline reports whether the device has an open connection besides cl.
func (b *Broker) stillOnline(d *device, cl *mqtt.Client) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.liveLocked(d, cl)
}
