package fieldbroker

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/townlink/townlink/gateway/certs"
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
	// ErrRefused is wrapped by a Handler for a message the gateway will not
	// store (now): store full or failing, the device over its rate. The
	// message is never acknowledged as stored: MQTT 5 gets a PUBACK with
	// reason 0x97 (quota exceeded), MQTT 3.1.1 no PUBACK: the connection is
	// closed so that the device keeps the message and resends it. The device
	// is throttled (Options.Backoff) while it keeps being refused.
	ErrRefused = errors.New("fieldbroker: message refused")
	// ErrRejected is wrapped by a Handler for a message that can never be
	// stored (malformed, wrong schema). It is refused like ErrRefused — never
	// acknowledged as stored — with MQTT 5 reason 0x99 (payload format
	// invalid) and counted as Malformed too. A gateway that keeps such
	// messages as "rejected" records returns nil instead.
	ErrRejected = errors.New("fieldbroker: message rejected")
	// ErrUnknownDevice reports a device id that is not configured.
	ErrUnknownDevice = errors.New("fieldbroker: unknown device")
	// ErrClosed reports a call on a closed broker.
	ErrClosed = errors.New("fieldbroker: broker closed")
	// ErrTLSFiles reports a certificate or key file that cannot be loaded.
	ErrTLSFiles = errors.New("fieldbroker: tls files")
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

// Defaults for zero Options fields.
const (
	DefaultMaxPayload        = 256 << 10
	DefaultMaxConnectSize    = 4 << 10 // bytes of a CONNECT packet (after the fixed header)
	DefaultMaxPending        = 256     // connections that have not logged in, in total
	DefaultMaxPendingPerAddr = 16      // the same, per source address
	DefaultKeepalive         = 120 * time.Second
	DefaultBackoffFirst      = 500 * time.Millisecond
	DefaultBackoffMax        = 30 * time.Second
	DefaultLogEvery          = time.Minute
)

// sessionExpiry bounds how long mochi keeps the session of a disconnected
// persistent (CleanSession=false) client: its downlink subscription and
// unacknowledged downlink messages. mochi's default is forever.
const sessionExpiry = 7 * 24 * 3600 // seconds

// Device is one recorder or kiosk allowed to log in.
type Device struct {
	ID       string // topic level: [A-Za-z0-9._-]{1,64}, not "inline"
	Username string
	Password []byte // read from password_file by the caller
}

// Handler takes one message of a device. It returns nil once the message is
// durably stored; only then does the device get its PUBACK. Any error means
// "not stored" and the message is never acknowledged as stored:
//   - an error wrapping ErrRefused: MQTT 5 PUBACK 0x97, MQTT 3.1.1 the
//     connection is closed without PUBACK (the device resends);
//   - an error wrapping ErrRejected: the same, with MQTT 5 reason 0x99;
//   - any other error (transient): MQTT 5 DISCONNECT 0x89 without PUBACK,
//     MQTT 3.1.1 the connection is closed without PUBACK.
//
// After each of these the device is throttled (Options.Backoff) until a
// message of it is stored again. The payload must not be modified. Handle
// runs on the device's connection goroutine: it may block that device (and
// only that device); it should return when ctx is cancelled (the broker is
// closing).
type Handler func(ctx context.Context, deviceID, event string, payload []byte) error

// Backoff is a growing delay: after k consecutive failures the next try
// waits min(First·2^(k-1), Max). Failures are forgotten after 2·Max without
// one.
type Backoff struct {
	First, Max time.Duration
}

// Options configures a broker. Zero values take the defaults above.
type Options struct {
	Listen    string // host:port for plain MQTT ("" = none); loopback only, or a WARN is logged
	TLSListen string // host:port for MQTT over TLS ("" = none)
	// TLS is the TLS listener's configuration. With TLSCertFile and
	// TLSKeyFile it may be nil (then TLS 1.2+ with that certificate); the
	// files are re-read when their modification time changes, so a renewed
	// certificate is used at the next handshake without a restart.
	TLS                     *tls.Config
	TLSCertFile, TLSKeyFile string
	Devices                 []Device
	// MaxPayload in bytes (0 = DefaultMaxPayload). A larger publish is
	// refused like ErrRefused, never acknowledged; a packet larger than
	// MaxPayload plus 70 KiB (topic and properties) is not even read: the
	// connection is closed.
	MaxPayload int
	// MaxConnectSize bounds a CONNECT packet before it is read (0 =
	// DefaultMaxConnectSize): a larger one is refused unread, so a will
	// payload is limited to a little less.
	MaxConnectSize int
	// MaxClients bounds logged-in connections (0 = 2×devices + 16).
	MaxClients int
	// MaxPending and MaxPendingPerAddr bound connections that have not
	// logged in yet, in total and per source address (0 = defaults). A
	// connection beyond them is closed at once.
	MaxPending, MaxPendingPerAddr int
	// Keepalive is the longest keepalive a client gets (0 =
	// DefaultKeepalive): a client asking 0 or more gets this one (MQTT 5
	// announces it in the CONNACK; an MQTT 3.1.1 client must ping within it).
	Keepalive time.Duration
	// Backoff delays the CONNACK after failed logins (per source address and
	// per username) and after refused messages (per device); zero fields take
	// DefaultBackoffFirst / DefaultBackoffMax.
	Backoff Backoff
	// LogEvery is the interval of repeated-warning summaries (0 =
	// DefaultLogEvery): the first of a kind is logged, the rest are counted
	// and summed up in one line per interval.
	LogEvery time.Duration
	Handle   Handler
	Logger   *slog.Logger // nil = discard
}

// Broker is a running field broker.
type Broker struct {
	srv   *mqtt.Server
	hook  *hook
	tcp   *listener // nil if no plain listener
	tlsL  *listener // nil if no TLS listener
	log   *slog.Logger
	quiet *quietLog
	h     Handler
	ctx   context.Context // lifetime of the broker; cancelled by Close
	stop  context.CancelFunc
	max   int
	keep  uint16            // keepalive ceiling, seconds
	dummy [sha256.Size]byte // compared against for unknown users

	logins *strikes // failed logins per source address and username
	bo     Backoff

	byUser map[string]*device // read-only after Start
	byID   map[string]*device // read-only after Start
	total  counters

	mu   sync.Mutex
	live map[*device]map[*mqtt.Client]struct{} // connections that have a session

	closing   atomic.Bool
	closeOnce sync.Once
	bg        sync.WaitGroup // the log summary loop
}

type device struct {
	id     string
	user   string
	pwHash [sha256.Size]byte
	c      counters

	refuseMu sync.Mutex
	refused  int       // consecutive refusals; reset when a message is stored
	lastRef  time.Time // of the last refusal
}

// Start validates o, opens the listeners and serves in the background until
// Close.
func Start(o Options) (*Broker, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.setDefaults()
	tc, err := o.tlsConfig()
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Broker{
		log:    log,
		h:      o.Handle,
		max:    o.MaxPayload,
		keep:   uint16(o.Keepalive / time.Second),
		bo:     o.Backoff,
		logins: newStrikes(o.Backoff),
		byUser: make(map[string]*device, len(o.Devices)),
		byID:   make(map[string]*device, len(o.Devices)),
		live:   make(map[*device]map[*mqtt.Client]struct{}),
		dummy:  sha256.Sum256([]byte("fieldbroker: no such user")),
	}
	b.ctx, b.stop = context.WithCancel(context.Background())
	b.quiet = newQuietLog(log.Handler(), o.LogEvery)
	b.bg.Add(1)
	go func() { defer b.bg.Done(); b.quiet.run(b.ctx) }()
	for _, d := range o.Devices {
		dv := &device{id: d.ID, user: d.Username, pwHash: sha256.Sum256(d.Password)}
		b.byUser[d.Username] = dv
		b.byID[d.ID] = dv
	}
	srv := mqtt.New(&mqtt.Options{
		Capabilities: capabilities(&o),
		Logger:       slog.New(&mochiLog{q: b.quiet}).With("component", "mochi"),
		InlineClient: true,
	})
	b.srv = srv
	b.hook = &hook{b: b}
	if err := srv.AddHook(b.hook, nil); err != nil {
		b.abort()
		return nil, fmt.Errorf("fieldbroker: add hook: %w", err)
	}
	if err := b.openListeners(&o, tc); err != nil {
		b.abort()
		return nil, err
	}
	if err := srv.Serve(); err != nil {
		b.abort()
		return nil, fmt.Errorf("fieldbroker: serve: %w", err)
	}
	if o.Listen != "" && !isLoopback(b.tcp.Address()) {
		log.Warn("fieldbroker: plain MQTT listener reachable from the network: passwords and messages cross the LAN unencrypted; use tls_listen for anything but loopback",
			"addr", b.tcp.Address())
	}
	return b, nil
}

// capabilities are mochi's server limits for o.
func capabilities(o *Options) *mqtt.Capabilities {
	caps := mqtt.NewDefaultServerCapabilities()
	// mochi's defaults drop messages once a client falls behind; the field
	// broker must not (DESIGN.md, library facts).
	caps.MaximumInflight = 65535
	caps.ReceiveMaximum = 65535
	caps.MaximumClientWritesPending = 4096 // queued deliveries (downlink commands); PUBACKs are written directly
	caps.MaximumSessionExpiryInterval = sessionExpiry
	caps.MaximumPacketSize = wireLimit(o.MaxPayload)
	caps.MaximumClients = int64(o.MaxClients)
	// No topic aliases: mochi would store an alias (server.go processPublish)
	// before the hooks see the publish, refused or not; with 0 any alias is a
	// protocol error (packets.PublishValidate).
	caps.TopicAliasMaximum = 0
	return caps
}

func (b *Broker) openListeners(o *Options, tc *tls.Config) error {
	gate := newGate(o.MaxPending, o.MaxPendingPerAddr)
	for _, ln := range []struct {
		id, addr string
		tls      *tls.Config
		dst      **listener
	}{{"field-tcp", o.Listen, nil, &b.tcp}, {"field-tls", o.TLSListen, tc, &b.tlsL}} {
		if ln.addr == "" {
			continue
		}
		l, err := listen(ln.id, ln.addr, ln.tls, &b.srv.Listeners.ClientsWg)
		if err == nil {
			l.gate, l.maxConnect, l.dropped, l.recovered = gate, o.MaxConnectSize, b.preAuthDropped, b.recovered
			*ln.dst = l // before AddListener: shutdownListeners must see it
			err = b.srv.AddListener(l)
		}
		if err != nil {
			return fmt.Errorf("%w on %s: %w", ErrListen, ln.addr, err)
		}
	}
	return nil
}

// abort undoes a Start that failed half-way.
func (b *Broker) abort() {
	b.stop()
	b.shutdownListeners()
	_ = b.srv.Close()
	b.bg.Wait()
}

// preAuthDropped counts a connection closed before login.
func (b *Broker) preAuthDropped(addr string, why error) {
	b.total[cPreAuthDropped].Add(1)
	b.note(slog.LevelWarn, nil, "fieldbroker: connection closed before login", "remote_addr", addr, "reason", why)
}

// recovered ends a connection mochi panicked on (listen.go establish) and
// does what mochi's attachClient does after a read loop that ended with an
// error (server.go:476-492), which the panic skipped: the will, the
// offline event, and forgetting a clean session. The panic's value names
// the fault (an index), never a payload.
func (b *Broker) recovered(c *conn, err error) {
	_ = c.Close()
	cl := c.client.Load()
	d := b.deviceOf(cl)
	b.count(d, cDecodePanics)
	b.note(slog.LevelError, d, "fieldbroker: connection closed: mochi panicked reading a packet", "remote_addr", c.addr, "error", clip(err.Error()))
	if d == nil {
		return
	}
	cl.Stop(err)
	if cl.Properties.Will.Flag > 0 {
		_, _ = b.hook.OnWill(cl, cl.Properties.Will)
	}
	expire := (cl.Properties.ProtocolVersion == 5 && cl.Properties.Props.SessionExpiryInterval == 0) ||
		(cl.Properties.ProtocolVersion < 5 && cl.Properties.Clean)
	b.hook.OnDisconnect(cl, err, expire)
	if expire && !cl.IsTakenOver() && !b.closing.Load() {
		cl.ClearInflights()
		b.srv.UnsubscribeClient(cl)
		b.srv.Clients.Delete(cl.ID)
	}
}

// wireLimit is mochi's MaximumPacketSize for a payload limit: room for the
// payload plus the largest topic and properties, capped at MQTT's maximum
// (256 MiB).
func wireLimit(maxPayload int) uint32 {
	n := int64(maxPayload) + 70<<10
	if n > 268435455 {
		n = 268435455
	}
	return uint32(n)
}

func (o *Options) setDefaults() {
	if o.MaxPayload == 0 {
		o.MaxPayload = DefaultMaxPayload
	}
	if o.MaxConnectSize == 0 {
		o.MaxConnectSize = DefaultMaxConnectSize
	}
	if o.MaxClients == 0 {
		o.MaxClients = 2*len(o.Devices) + 16
	}
	if o.MaxPending == 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.MaxPendingPerAddr == 0 {
		o.MaxPendingPerAddr = DefaultMaxPendingPerAddr
	}
	if o.Keepalive == 0 {
		o.Keepalive = DefaultKeepalive
	}
	if o.Backoff.First == 0 {
		o.Backoff.First = DefaultBackoffFirst
	}
	if o.Backoff.Max == 0 {
		o.Backoff.Max = max(DefaultBackoffMax, o.Backoff.First)
	}
	if o.LogEvery == 0 {
		o.LogEvery = DefaultLogEvery
	}
}

func (o *Options) validate() error {
	if o.Listen == "" && o.TLSListen == "" {
		return fmt.Errorf("%w: no listener (set Listen or TLSListen)", ErrConfig)
	}
	if o.TLSListen != "" && o.TLS == nil && (o.TLSCertFile == "" || o.TLSKeyFile == "") {
		return fmt.Errorf("%w: TLSListen %s without a TLS config or certificate and key files", ErrConfig, o.TLSListen)
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		return fmt.Errorf("%w: TLSCertFile and TLSKeyFile go together", ErrConfig)
	}
	if o.Handle == nil {
		return fmt.Errorf("%w: no Handle function", ErrConfig)
	}
	for _, v := range []struct {
		name string
		n    int64
	}{{"MaxPayload", int64(o.MaxPayload)}, {"MaxConnectSize", int64(o.MaxConnectSize)}, {"MaxClients", int64(o.MaxClients)},
		{"MaxPending", int64(o.MaxPending)}, {"MaxPendingPerAddr", int64(o.MaxPendingPerAddr)}, {"Keepalive", int64(o.Keepalive)},
		{"Backoff.First", int64(o.Backoff.First)}, {"Backoff.Max", int64(o.Backoff.Max)}, {"LogEvery", int64(o.LogEvery)}} {
		if v.n < 0 {
			return fmt.Errorf("%w: %s %d is negative", ErrConfig, v.name, v.n)
		}
	}
	if o.Keepalive > 65535*time.Second {
		return fmt.Errorf("%w: Keepalive %v is above MQTT's 65535 s", ErrConfig, o.Keepalive)
	}
	if o.Keepalive != 0 && o.Keepalive < time.Second {
		return fmt.Errorf("%w: Keepalive %v is below 1 s", ErrConfig, o.Keepalive)
	}
	return o.validateDevices()
}

func (o *Options) validateDevices() error {
	ids := make(map[string]bool, len(o.Devices))
	users := make(map[string]bool, len(o.Devices))
	for i, d := range o.Devices {
		if err := checkDeviceID(d.ID); err != nil {
			return fmt.Errorf("%w: device %d (%q): %w", ErrConfig, i, d.ID, err)
		}
		if d.ID == mqtt.InlineClientId {
			return fmt.Errorf("%w: device id %q is reserved (the broker's own client)", ErrConfig, d.ID)
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

// tlsConfig is the TLS listener's config: o.TLS, with the certificate
// reloaded from files when they are given.
func (o *Options) tlsConfig() (*tls.Config, error) {
	if o.TLSListen == "" {
		return nil, nil
	}
	if o.TLSCertFile == "" {
		return o.TLS, nil
	}
	r, err := certs.NewKeyPair(o.TLSCertFile, o.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTLSFiles, err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.TLS != nil {
		tc = o.TLS.Clone()
	}
	tc.Certificates = nil
	tc.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.Get() }
	return tc, nil
}

// isLoopback reports whether a listener address accepts loopback
// connections only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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
		b.bg.Wait()
		b.quiet.flush()
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
