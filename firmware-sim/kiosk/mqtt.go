package kiosk

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// ErrOptions reports unusable options.
var ErrOptions = errors.New("kiosk sim: bad options")

// ErrBroker reports a broker that could not be reached or refused a publish.
var ErrBroker = errors.New("kiosk sim: broker")

// checkBroker validates a broker URL first: paho's AddBroker swallows a
// bad one.
func checkBroker(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%w: broker %q: %v", ErrOptions, s, err)
	}
	if u.Scheme != "tcp" && u.Scheme != "mqtt" {
		return fmt.Errorf("%w: broker %q: scheme must be tcp or mqtt (a field device on the hall's LAN)", ErrOptions, s)
	}
	if u.Host == "" {
		return fmt.Errorf("%w: broker %q has no host", ErrOptions, s)
	}
	return nil
}

// conn is a client whose network connection can be cut without an MQTT
// DISCONNECT, as when a device loses power: the broker then publishes
// the last will.
type conn struct {
	mqtt.Client
	mu      sync.Mutex
	raw     net.Conn
	aborted bool
}

// abort cuts the connection (the broker sends the will) and stops paho.
func (c *conn) abort() {
	c.mu.Lock()
	c.aborted = true // no reconnect: it would take the session over, will and all
	if c.raw != nil {
		c.raw.Close()
	}
	c.mu.Unlock()
	c.Client.Disconnect(0)
}

// dial connects with a persistent session (CleanSession false), so that
// paho resends, after a reconnect, every QoS 1 publish the broker did not
// acknowledge (from paho's in-memory store: a restart of the simulator
// itself loses them, as a device without flash would).
func dial(ctx context.Context, broker, id, user, pass, willTopic string, will []byte) (*conn, error) {
	c := &conn{}
	o := mqtt.NewClientOptions().
		SetCustomOpenConnectionFn(func(u *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.aborted {
				return nil, net.ErrClosed
			}
			d := net.Dialer{Timeout: o.ConnectTimeout}
			nc, err := d.Dial("tcp", u.Host)
			if err == nil {
				c.raw = nc
			}
			return nc, err
		}).
		AddBroker(broker).
		SetClientID(id).
		SetUsername(user).
		SetPassword(pass).
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(200*time.Millisecond).
		SetMaxReconnectInterval(2*time.Second).
		SetKeepAlive(30*time.Second).
		SetConnectTimeout(5*time.Second).
		SetWriteTimeout(10*time.Second).
		SetWill(willTopic, string(will), 1, false)
	c.Client = mqtt.NewClient(o)
	if err := wait(ctx, c.Connect()); err != nil {
		c.abort()
		return nil, fmt.Errorf("%w: connect %s as %s: %w", ErrBroker, broker, id, err)
	}
	return c, nil
}

// wait waits for a paho token or the context.
func wait(ctx context.Context, t mqtt.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}
