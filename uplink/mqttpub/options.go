package mqttpub

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors returned by this package; match them with errors.Is.
var (
	ErrInvalidOptions = errors.New("mqttpub: invalid options")
	ErrInvalidTopic   = errors.New("mqttpub: invalid topic")
	ErrNotConnected   = errors.New("mqttpub: not connected")
	ErrConnectionLost = errors.New("mqttpub: connection lost before acknowledgement")
	ErrTimeout        = errors.New("mqttpub: timed out waiting for the broker")
	ErrRefused        = errors.New("mqttpub: refused by the broker")
	ErrConnect        = errors.New("mqttpub: connect failed")
)

// ConnectError is the error of one failed connection attempt (see LastError).
// It wraps ErrConnect and the underlying cause.
type ConnectError struct {
	Broker string // the broker URL tried
	Err    error  // paho's or the network's error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("mqttpub: connect %s: %v", e.Broker, e.Err)
}

// Unwrap returns ErrConnect and the cause.
func (e *ConnectError) Unwrap() []error { return []error{ErrConnect, e.Err} }

// Message is a topic and payload, used for the last will (sent by the broker
// at QoS 1, retained, when the connection ends without a DISCONNECT).
type Message struct {
	Topic   string
	Payload []byte
}

// Backoff bounds the pause between connection rounds: it starts at Min,
// doubles after every round in which no broker accepted the connection (and
// after a connection that dropped within Max of being made), and stops
// growing at Max. Each pause is drawn uniformly from [d/2, d], from a source
// seeded with the client id. After a connection that lasted, the first
// reconnect waits a pause drawn from [0, Min].
type Backoff struct {
	Min, Max time.Duration
}

// Options configures a Client. Zero durations take the defaults below.
type Options struct {
	// Brokers are tried in order, failing over to the next one:
	// tcp://host:port or mqtt://host:port (plain), ssl://, tls:// or
	// mqtts://host:port (TLS). The port is required.
	Brokers            []string
	ClientID           string // the gateway id
	Username, Password string
	TLS                *tls.Config // for TLS brokers; put the client certificate in it for mutual TLS
	// GetTLS, if set, is called at every TLS dial instead of using TLS, so
	// that a CA or certificate file that changed is used at the next
	// connection. Its error fails that dial.
	GetTLS         func() (*tls.Config, error)
	Will           *Message      // last will: QoS 1, retained
	KeepAlive      time.Duration // default 30s
	ConnectTimeout time.Duration // dial + TLS + CONNACK, per broker; default 10s
	PublishTimeout time.Duration // wait for PUBACK/SUBACK; default 30s. A socket write may block min(this, 10s)
	Backoff        Backoff       // default {Min: 1s, Max: 60s}
	// OnConnect is called after every successful connection, once the
	// subscriptions are renewed, e.g. to re-publish the retained online
	// status. It runs on the connection goroutine: it may call Publish, but
	// should not block for long.
	OnConnect func()
	// PersistentSession asks the broker to keep this client's session
	// (CleanSession false): QoS 1 messages for its subscriptions, such as
	// the platform's commands, are queued while it is away and delivered
	// when it reconnects.
	PersistentSession bool
	Logger            *slog.Logger // nil: discard
}

// Defaults, applied by New to zero fields.
const (
	DefaultKeepAlive      = 30 * time.Second
	DefaultConnectTimeout = 10 * time.Second
	DefaultPublishTimeout = 30 * time.Second
	DefaultBackoffMin     = time.Second
	DefaultBackoffMax     = 2 * time.Minute
)

func (o *Options) setDefaults() {
	if o.KeepAlive == 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.PublishTimeout == 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	if o.Backoff.Min == 0 {
		o.Backoff.Min = DefaultBackoffMin
	}
	if o.Backoff.Max == 0 {
		o.Backoff.Max = max(DefaultBackoffMax, o.Backoff.Min)
	}
}

// Validate checks the options (after defaults) and every broker URL.
func (o *Options) Validate() error {
	if len(o.Brokers) == 0 {
		return fmt.Errorf("%w: no brokers", ErrInvalidOptions)
	}
	for i, b := range o.Brokers {
		if _, err := ParseBroker(b); err != nil {
			return fmt.Errorf("%w: brokers[%d]: %w", ErrInvalidOptions, i, err)
		}
	}
	if o.ClientID == "" {
		return fmt.Errorf("%w: empty client id", ErrInvalidOptions)
	}
	if len(o.ClientID) > 65535 || !utf8.ValidString(o.ClientID) || strings.ContainsRune(o.ClientID, 0) {
		return fmt.Errorf("%w: client id %q is not a valid MQTT string", ErrInvalidOptions, o.ClientID)
	}
	if o.Password != "" && o.Username == "" {
		return fmt.Errorf("%w: password without username", ErrInvalidOptions)
	}
	if o.Will != nil {
		if err := validateTopic(o.Will.Topic); err != nil {
			return fmt.Errorf("%w: will: %w", ErrInvalidOptions, err)
		}
	}
	for name, d := range map[string]time.Duration{"keep alive": o.KeepAlive, "connect timeout": o.ConnectTimeout,
		"publish timeout": o.PublishTimeout, "backoff min": o.Backoff.Min, "backoff max": o.Backoff.Max} {
		if d < 0 {
			return fmt.Errorf("%w: negative %s %v", ErrInvalidOptions, name, d)
		}
	}
	if o.KeepAlive < time.Second {
		return fmt.Errorf("%w: keep alive %v is below MQTT's 1 s resolution", ErrInvalidOptions, o.KeepAlive)
	}
	if o.Backoff.Max < o.Backoff.Min {
		return fmt.Errorf("%w: backoff max %v < min %v", ErrInvalidOptions, o.Backoff.Max, o.Backoff.Min)
	}
	return nil
}

// ParseBroker parses and checks one broker URL: scheme tcp, mqtt, ssl, tls
// or mqtts, a host, a numeric port, and nothing else (no path, query, user
// info). Paho's AddBroker silently drops URLs it cannot parse, so every URL is
// checked here first.
func ParseBroker(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("broker URL %q: %w", s, err)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts":
	case "":
		return nil, fmt.Errorf("broker URL %q: no scheme (want tcp://host:port or ssl://host:port)", s)
	default:
		return nil, fmt.Errorf("broker URL %q: unsupported scheme %q (want tcp, mqtt, ssl, tls or mqtts)", s, u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, fmt.Errorf("broker URL %q: no host (want %s://host:port)", s, u.Scheme)
	}
	if u.User != nil {
		return nil, fmt.Errorf("broker URL %q: credentials belong in Username/Password, not the URL", s)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("broker URL %q: unexpected path, query or fragment", s)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, fmt.Errorf("broker URL %q: want host:port: %w", s, err)
	}
	if host == "" {
		return nil, fmt.Errorf("broker URL %q: empty host", s)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return nil, fmt.Errorf("broker URL %q: bad port %q", s, port)
	}
	u.Path = ""
	return u, nil
}

func isTLS(u string) bool {
	s, _, _ := strings.Cut(u, "://")
	return s == "ssl" || s == "tls" || s == "mqtts"
}

// validateTopic checks a topic name to publish to: non-empty, valid UTF-8,
// no NUL, no wildcards (a broker disconnects a client that publishes to one).
func validateTopic(topic string) error {
	switch {
	case topic == "":
		return fmt.Errorf("%w: empty", ErrInvalidTopic)
	case len(topic) > 65535:
		return fmt.Errorf("%w: %d bytes long", ErrInvalidTopic, len(topic))
	case !utf8.ValidString(topic) || strings.ContainsRune(topic, 0):
		return fmt.Errorf("%w: %q is not valid UTF-8 without NUL", ErrInvalidTopic, topic)
	case strings.ContainsAny(topic, "+#"):
		return fmt.Errorf("%w: %q contains a wildcard", ErrInvalidTopic, topic)
	}
	return nil
}

// validateFilter checks a subscription filter: '#' only as the last level,
// '+' only as a whole level.
func validateFilter(filter string) error {
	if filter == "" || len(filter) > 65535 || !utf8.ValidString(filter) || strings.ContainsRune(filter, 0) {
		return fmt.Errorf("%w: bad filter %q", ErrInvalidTopic, filter)
	}
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return fmt.Errorf("%w: filter %q: '#' must be the whole last level", ErrInvalidTopic, filter)
		}
		if strings.Contains(l, "+") && l != "+" {
			return fmt.Errorf("%w: filter %q: '+' must be a whole level", ErrInvalidTopic, filter)
		}
	}
	return nil
}
