package mqttpub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/townlink/townlink/uplink"
)

// Client publishes at QoS 1 to one of several brokers. It is safe for
// concurrent use. Create it with New, run it with Start, stop it with Close.
type Client struct {
	o   Options
	log *slog.Logger
	bo  *backoff // owned by the connection goroutine

	cur    atomic.Pointer[conn] // nil while disconnected
	closed atomic.Bool

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	done    chan struct{}  // closed when the connection goroutine has returned
	closing chan struct{}  // closed by Close
	pubs    sync.WaitGroup // paho Publish calls in flight (see publish)
	subs    []*subscription
	lastErr error
}

var _ uplink.Publisher = (*Client)(nil)

// conn is one paho client with one network connection. A new one is built
// for every connection attempt.
type conn struct {
	cli    mqtt.Client
	broker string
	lost   chan error    // receives the error when the connection drops
	dead   chan struct{} // closed when the connection drops
	once   sync.Once
}

// dropped records the loss of the connection (paho calls its handler once,
// but be safe).
func (cn *conn) dropped(err error) {
	cn.once.Do(func() {
		cn.lost <- err
		close(cn.dead)
	})
}

type subscription struct {
	filter  string
	handler func(topic string, payload []byte)
}

// New validates the options and applies defaults. It does no I/O.
func New(o Options) (*Client, error) {
	o.Brokers = append([]string(nil), o.Brokers...)
	o.setDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Will != nil {
		w := *o.Will
		w.Payload = append([]byte(nil), w.Payload...)
		o.Will = &w
	}
	return &Client{
		o:       o,
		log:     discard(o.Logger).With("client", o.ClientID),
		bo:      newBackoff(o.Backoff, o.ClientID),
		closing: make(chan struct{}),
	}, nil
}

// Start connects in the background and keeps reconnecting, with backoff and
// failover across Options.Brokers, until ctx ends or Close is called. A
// broker that is down is not an error; see Connected and LastError. Start
// may be called once; later calls do nothing.
//
// When ctx ends the client stops reconnecting but keeps the connection it
// has, so that the caller can still publish its last words (the offline
// status) before Close disconnects. Always call Close.
func (c *Client) Start(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.closed.Load() {
		c.log.Warn("mqttpub: Start called twice or after Close; ignored")
		return
	}
	c.started = true
	ctx, c.cancel = context.WithCancel(ctx)
	c.done = make(chan struct{})
	go func() { // owned by c: Close cancels and waits for it
		defer close(c.done)
		c.run(ctx)
	}()
}

// Close disconnects cleanly (sending DISCONNECT, so the broker does NOT
// publish the will: publish an offline status first if you want one) and
// stops the connection goroutine. Later Publish calls return
// uplink.ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed.Swap(true) {
		c.mu.Unlock()
		return nil
	}
	cancel, done := c.cancel, c.done
	close(c.closing)
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	c.pubs.Wait()
	return nil
}

// Connected reports whether the client has an open connection now.
func (c *Client) Connected() bool {
	cn := c.cur.Load()
	return cn != nil && cn.cli.IsConnectionOpen()
}

// Broker returns the URL of the broker connected to, or "" when disconnected.
func (c *Client) Broker() string {
	if cn := c.cur.Load(); cn != nil {
		return cn.broker
	}
	return ""
}

// LastError returns the error of the last failed connection attempt or of
// the last lost connection (a *ConnectError), or nil while connected and
// before the first attempt.
func (c *Client) LastError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

func (c *Client) setLastErr(err error) {
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
}

// Publish sends payload to topic at QoS 1 and returns nil only after the
// broker's PUBACK. While disconnected it returns promptly with an error
// wrapping ErrNotConnected; if the connection drops before the PUBACK the
// error wraps ErrConnectionLost; after PublishTimeout it wraps ErrTimeout.
// In every error case the message may or may not have reached the broker:
// keep it queued and publish it again (at least once). ctx is honoured
// throughout. payload must not be modified until Close: after an early
// return paho may still be holding it.
func (c *Client) Publish(ctx context.Context, topic string, payload []byte) error {
	return c.publish(ctx, topic, payload, false)
}

// PublishRetained is Publish with the retain flag set (e.g. the status).
func (c *Client) PublishRetained(ctx context.Context, topic string, payload []byte) error {
	return c.publish(ctx, topic, payload, true)
}

func (c *Client) publish(ctx context.Context, topic string, payload []byte, retained bool) error {
	if c.closed.Load() {
		return fmt.Errorf("mqttpub: publish %s: %w", topic, uplink.ErrClosed)
	}
	if err := validateTopic(topic); err != nil {
		return fmt.Errorf("mqttpub: publish: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mqttpub: publish %s: %w", topic, err)
	}
	cn := c.cur.Load()
	if cn == nil {
		return fmt.Errorf("mqttpub: publish %s: %w", topic, ErrNotConnected)
	}
	// paho's Publish can block for up to its WriteTimeout (PublishTimeout)
	// when the connection drops between its connected check and handing the
	// packet to its writer; nobody reads the writer's channel any more. Call
	// it on a goroutine so that the caller learns of the loss at once and ctx
	// is honoured. The goroutine ends by itself within writeTimeout; Close
	// waits for it.
	toks := make(chan mqtt.Token, 1)
	c.mu.Lock()
	if c.closed.Load() { // checked again under mu: no Add after Close's Wait
		c.mu.Unlock()
		return fmt.Errorf("mqttpub: publish %s: %w", topic, uplink.ErrClosed)
	}
	c.pubs.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.pubs.Done()
		toks <- cn.cli.Publish(topic, 1, retained, payload)
	}()
	t := time.NewTimer(c.o.PublishTimeout)
	defer t.Stop()
	var err error
	select {
	case tok := <-toks:
		err = c.wait(ctx, cn, tok, t.C)
	case <-cn.dead:
		err = ErrConnectionLost
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
		err = fmt.Errorf("%w: could not hand the message to paho within %v", ErrTimeout, c.o.PublishTimeout)
	}
	if err != nil {
		return fmt.Errorf("mqttpub: publish %s (%d bytes) to %s: %w", topic, len(payload), cn.broker, err)
	}
	return nil
}

// Subscribe subscribes to filter at QoS 1 and remembers the subscription:
// it is renewed after every reconnect. While disconnected it returns nil and
// subscribes on the next connection. handler may be called concurrently, from
// paho's goroutines; payload is a fresh slice per message that it may keep.
func (c *Client) Subscribe(ctx context.Context, filter string, handler func(topic string, payload []byte)) error {
	if err := validateFilter(filter); err != nil {
		return fmt.Errorf("mqttpub: subscribe: %w", err)
	}
	if handler == nil {
		return fmt.Errorf("mqttpub: subscribe %s: %w: nil handler", filter, ErrInvalidOptions)
	}
	if c.closed.Load() {
		return fmt.Errorf("mqttpub: subscribe %s: %w", filter, uplink.ErrClosed)
	}
	s := &subscription{filter: filter, handler: handler}
	c.mu.Lock()
	c.subs = append(c.subs, s)
	c.mu.Unlock()
	cn := c.cur.Load()
	if cn == nil {
		return nil // the connection goroutine subscribes once connected
	}
	return c.subscribe(ctx, cn, s)
}

func (c *Client) subscribe(ctx context.Context, cn *conn, s *subscription) error {
	h := s.handler
	tok := cn.cli.Subscribe(s.filter, 1, func(_ mqtt.Client, m mqtt.Message) { h(m.Topic(), m.Payload()) })
	t := time.NewTimer(c.o.PublishTimeout)
	defer t.Stop()
	if err := c.wait(ctx, cn, tok, t.C); err != nil {
		return fmt.Errorf("mqttpub: subscribe %s on %s: %w", s.filter, cn.broker, err)
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		if rc, ok := st.Result()[s.filter]; ok && rc >= 0x80 {
			return fmt.Errorf("mqttpub: subscribe %s on %s: %w (SUBACK 0x%02x)", s.filter, cn.broker, ErrRefused, rc)
		}
	}
	return nil
}

// wait waits for a token, the loss of the connection, ctx or timeout.
func (c *Client) wait(ctx context.Context, cn *conn, tok mqtt.Token, timeout <-chan time.Time) error {
	select {
	case <-tok.Done():
	case <-cn.dead:
		select {
		case <-tok.Done(): // completed (perhaps acknowledged) just before
		default:
			return ErrConnectionLost
		}
	case <-ctx.Done():
		return ctx.Err()
	case <-timeout:
		return fmt.Errorf("%w: no acknowledgement after %v", ErrTimeout, c.o.PublishTimeout)
	}
	err := tok.Error()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mqtt.ErrNotConnected):
		return ErrNotConnected
	case !cn.cli.IsConnectionOpen():
		return fmt.Errorf("%w: %w", ErrConnectionLost, err)
	}
	return err
}

// run is the connection goroutine: connect, wait for the connection to drop,
// back off, fail over, repeat, until ctx ends.
func (c *Client) run(ctx context.Context) {
	n := len(c.o.Brokers)
	idx, failed := 0, 0 // broker to try next; failures in this round
	var out outage      // rounds in a row in which no broker answered
	for ctx.Err() == nil {
		broker := c.o.Brokers[idx]
		cn, err := c.connect(ctx, broker)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.setLastErr(err)
			idx = (idx + 1) % n
			failed++
			if failed < n {
				c.log.Debug("mqttpub: connect failed, trying next broker", "broker", broker, "err", err)
				continue
			}
			failed = 0
			d := c.bo.next()
			// One line per back-off step, however many brokers and library
			// retries were behind it.
			c.log.Warn(out.failed(time.Now(), n, d), "broker", broker, "err", err, "tries", out.tries, "retry_in", d)
			if !sleep(ctx, d) {
				return
			}
			continue
		}

		failed = 0
		connectedAt := time.Now()
		c.setLastErr(nil)
		c.cur.Store(cn)
		if out.tries > 0 {
			c.log.Info(out.recovered(connectedAt), "broker", broker, "tries", out.tries)
		} else {
			c.log.Info("mqttpub: connected", "broker", broker)
		}
		out = outage{}
		c.resubscribe(ctx, cn)
		if c.o.OnConnect != nil {
			c.o.OnConnect()
		}

		select {
		case err := <-cn.lost:
			c.cur.Store(nil)
			c.setLastErr(&ConnectError{Broker: broker, Err: fmt.Errorf("connection lost: %w", err)})
			// Reconnect to the same broker first. After a connection that
			// lasted, pause for a spread over [0, Backoff.Min] so gateways cut
			// off together come back apart; after a short one (a broker that
			// accepts and drops, or another client with our id taking over),
			// keep backing off instead of reconnecting in a tight loop.
			var d time.Duration
			if time.Since(connectedAt) >= c.o.Backoff.Max {
				c.bo.reset()
				d = c.bo.spread(c.o.Backoff.Min)
			} else {
				d = c.bo.next()
			}
			c.log.Warn("mqttpub: connection lost", "broker", broker, "err", err, "retry_in", d)
			if !sleep(ctx, d) {
				return
			}
		case <-ctx.Done():
			// No more reconnecting, but keep this connection for the
			// caller's last words until Close.
			select {
			case err := <-cn.lost:
				c.cur.Store(nil)
				c.setLastErr(&ConnectError{Broker: broker, Err: fmt.Errorf("connection lost: %w", err)})
				c.log.Warn("mqttpub: connection lost while stopping", "broker", broker, "err", err)
			case <-c.closing:
				c.cur.Store(nil)
				cn.cli.Disconnect(250)
				c.log.Info("mqttpub: disconnected", "broker", broker)
			}
			return
		}
	}
}

// connect makes one connection attempt to one broker.
func (c *Client) connect(ctx context.Context, broker string) (*conn, error) {
	cn := &conn{broker: broker, lost: make(chan error, 1), dead: make(chan struct{})}
	cn.cli = mqtt.NewClient(c.pahoOptions(cn))
	tok := cn.cli.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		// Let paho's attempt finish (bounded by ConnectTimeout) so that no
		// connection is left open behind us.
		t := time.NewTimer(c.o.ConnectTimeout + time.Second)
		defer t.Stop()
		select {
		case <-tok.Done():
			if tok.Error() == nil {
				cn.cli.Disconnect(0)
			}
		case <-t.C:
		}
		return nil, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		if ct, ok := tok.(*mqtt.ConnectToken); ok {
			if rc := ct.ReturnCode(); rc >= packets.ErrRefusedBadProtocolVersion && rc <= packets.ErrRefusedNotAuthorised {
				err = fmt.Errorf("%w (CONNACK return code %d: %w)", ErrRefused, rc, err)
			}
		}
		if isTLS(broker) && !c.hasClientCert() {
			// With TLS 1.3 the broker checks the client certificate after the
			// client's handshake has finished, so a missing one shows up as a
			// reset or EOF on the CONNECT: say what is probably wrong.
			err = fmt.Errorf("%w (no client certificate configured; a broker that requires mutual TLS drops such connections)", err)
		}
		return nil, &ConnectError{Broker: broker, Err: err}
	}
	return cn, nil
}

func (c *Client) pahoOptions(cn *conn) *mqtt.ClientOptions {
	o := &c.o
	po := mqtt.NewClientOptions()
	po.AddBroker(cn.broker) // validated in New: AddBroker drops bad URLs silently
	po.SetClientID(o.ClientID)
	if o.Username != "" {
		po.SetUsername(o.Username)
		po.SetPassword(o.Password)
	}
	po.SetCustomOpenConnectionFn(c.dial) // TCP or TLS, see dial.go
	po.SetProtocolVersion(4)             // MQTT 3.1.1, no fallback to 3.1
	po.SetKeepAlive(o.KeepAlive)
	po.SetPingTimeout(min(10*time.Second, o.KeepAlive))
	po.SetConnectTimeout(o.ConnectTimeout)
	po.SetWriteTimeout(writeTimeout(o.PublishTimeout))
	po.SetAutoReconnect(false) // our run loop reconnects, with our backoff and failover
	po.SetConnectRetry(false)
	po.SetCleanSession(!o.PersistentSession)
	po.SetResumeSubs(false)
	if o.PersistentSession {
		// The broker may deliver queued messages right after CONNACK,
		// before this connection has subscribed again: route them.
		po.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { c.route(m.Topic(), m.Payload()) })
	}
	po.SetOrderMatters(false)
	if o.Will != nil {
		po.SetBinaryWill(o.Will.Topic, o.Will.Payload, 1, true)
	}
	po.SetConnectionLostHandler(func(_ mqtt.Client, err error) { cn.dropped(err) })
	return po
}

// route hands a message that arrived outside a live subscription (queued
// for a persistent session) to every subscription whose filter matches.
func (c *Client) route(topic string, payload []byte) {
	c.mu.Lock()
	subs := append([]*subscription(nil), c.subs...)
	c.mu.Unlock()
	for _, s := range subs {
		if TopicMatches(s.filter, topic) {
			s.handler(topic, payload)
		}
	}
}

// TopicMatches reports whether an MQTT topic filter (with + and #, and an
// optional $share/GROUP/ prefix) matches a topic.
func TopicMatches(filter, topic string) bool {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		_, f, found := strings.Cut(rest, "/")
		if !found {
			return false
		}
		filter = f
	}
	fs, ts := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fs {
		if f == "#" {
			return i < len(ts) || i == len(ts)
		}
		if i >= len(ts) || (f != "+" && f != ts[i]) {
			return false
		}
	}
	return len(fs) == len(ts)
}

func (c *Client) resubscribe(ctx context.Context, cn *conn) {
	c.mu.Lock()
	subs := append([]*subscription(nil), c.subs...)
	c.mu.Unlock()
	for _, s := range subs {
		if err := c.subscribe(ctx, cn, s); err != nil {
			c.log.Error("mqttpub: renewing subscription failed", "filter", s.filter, "err", err)
		}
	}
}

// sleep waits d or until ctx ends; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *Client) hasClientCert() bool {
	t, err := c.tlsConfig()
	return err == nil && (len(t.Certificates) > 0 || t.GetClientCertificate != nil)
}

// writeTimeout bounds one socket write, and how long paho's Publish may block
// handing a packet to its writer (see publish): at most 10 s, so that Close
// does not wait long for a Publish call stuck in paho after a lost connection.
func writeTimeout(publishTimeout time.Duration) time.Duration {
	return min(publishTimeout, 10*time.Second)
}
