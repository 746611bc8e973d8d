// Package fielddev is what the simulated MQTT field devices (recorder,
// kiosk) share: a paho connection with a persistent session that can be
// cut like a power loss, so the broker sends the device's last will.
package fielddev

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// CheckBroker validates a broker URL first (paho's AddBroker swallows a
// bad one); errors wrap errOptions.
func CheckBroker(s string, errOptions error) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%w: broker %q: %v", errOptions, s, err)
	}
	if u.Scheme != "tcp" && u.Scheme != "mqtt" {
		return fmt.Errorf("%w: broker %q: scheme must be tcp or mqtt (a field device on the hall's LAN)", errOptions, s)
	}
	if u.Host == "" {
		return fmt.Errorf("%w: broker %q has no host", errOptions, s)
	}
	return nil
}

// Conn is a client whose network connection can be cut without an MQTT
// DISCONNECT, as when a device loses power: the broker then publishes
// the last will.
type Conn struct {
	mqtt.Client
	mu      sync.Mutex
	raw     net.Conn
	aborted bool
}

// Abort cuts the connection (the broker sends the will) and stops paho.
func (c *Conn) Abort() {
	c.mu.Lock()
	c.aborted = true // no reconnect: it would take the session over, will and all
	if c.raw != nil {
		c.raw.Close()
	}
	c.mu.Unlock()
	c.Client.Disconnect(0)
}

// Dial connects with a persistent session (CleanSession false), so that
// paho resends, after a reconnect, every QoS 1 publish the broker did not
// acknowledge (from paho's in-memory store: a restart of the simulator
// itself loses them, as a device without flash would).
// Its errors wrap errBroker.
func Dial(ctx context.Context, errBroker error, broker, id, user, pass, willTopic string, will []byte) (*Conn, error) {
	c := &Conn{}
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
	if err := Wait(ctx, c.Connect()); err != nil {
		c.Abort()
		return nil, fmt.Errorf("%w: connect %s as %s: %w", errBroker, broker, id, err)
	}
	return c, nil
}

// Wait waits for a paho token or the context.
func Wait(ctx context.Context, t mqtt.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// PublishAt waits until due on the real clock (a simulated device's time,
// scaled), then publishes payload at QoS 1 on topic and waits for its
// PUBACK. Its errors wrap errBroker, or are ctx's.
func (c *Conn) PublishAt(ctx context.Context, errBroker error, due time.Time, topic string, payload []byte) error {
	if d := time.Until(due); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	if err := Wait(ctx, c.Publish(topic, 1, false, payload)); err != nil {
		return fmt.Errorf("%w: publish %s: %w", errBroker, topic, err)
	}
	return nil
}
