package fieldbroker_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/gateway/fieldbroker"
)

// v5conn is a hand-written MQTT 5 (or 3.1.1, ver 4) client
// (paho.mqtt.golang speaks only 3.1.1), written from the OASIS MQTT 5.0 and
// 3.1.1 texts, not from mochi's codec.
type v5conn struct {
	t   *testing.T
	c   net.Conn
	rd  *bufio.Reader
	ver byte
}

func varint(n int) []byte {
	var out []byte
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			return out
		}
	}
}

func str(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

func (v *v5conn) send(typeFlags byte, body []byte) {
	v.t.Helper()
	if err := v.trySend(typeFlags, body); err != nil {
		v.t.Fatalf("write: %v", err)
	}
}

// trySend writes one packet; a broker that refuses a packet may close the
// connection while it is still being written (an oversized PUBLISH).
func (v *v5conn) trySend(typeFlags byte, body []byte) error {
	pk := append(append([]byte{typeFlags}, varint(len(body))...), body...)
	_, err := v.c.Write(pk)
	return err
}

// read returns the next packet's first byte and body.
func (v *v5conn) read() (byte, []byte, error) {
	if err := v.c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return 0, nil, err
	}
	h, err := v.rd.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for {
		b, err := v.rd.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(b&0x7f) * mul
		mul *= 128
		if b&0x80 == 0 {
			break
		}
	}
	body := make([]byte, n)
	_, err = io.ReadFull(v.rd, body)
	return h, body, err
}

func dialV5(t *testing.T, addr, user, pass, clientID string) *v5conn {
	t.Helper()
	return dialRaw(t, addr, 5, user, pass, clientID)
}

// dialRaw logs in with MQTT 5 (ver 5) or 3.1.1 (ver 4), clean session,
// keepalive 30 s.
func dialRaw(t *testing.T, addr string, ver byte, user, pass, clientID string) *v5conn {
	t.Helper()
	v, ack, err := tryRaw(t, addr, ver, user, pass, clientID)
	if err != nil || len(ack) < 2 || ack[1] != 0 {
		t.Fatalf("CONNACK: body %x err %v", ack, err)
	}
	return v
}

// tryRaw sends a CONNECT (keepalive 30 s) and returns the CONNACK body.
func tryRaw(t *testing.T, addr string, ver byte, user, pass, clientID string) (*v5conn, []byte, error) {
	t.Helper()
	return connectRaw(t, addr, ver, 30, user, pass, clientID)
}

// connectRaw sends a CONNECT with keepalive ka seconds and returns the
// CONNACK body.
func connectRaw(t *testing.T, addr string, ver byte, ka uint16, user, pass, clientID string) (*v5conn, []byte, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	v := &v5conn{t: t, c: c, rd: bufio.NewReader(c), ver: ver}
	body := append(str("MQTT"), ver, 0x80|0x40|0x02, byte(ka>>8), byte(ka)) // user+pass+clean start
	if ver == 5 {
		body = append(body, 0) // no properties
	}
	body = append(append(append(body, str(clientID)...), str(user)...), str(pass)...)
	v.send(0x10, body)
	h, ack, err := v.read()
	if err == nil && h != 0x20 {
		err = fmt.Errorf("got packet %#x, want CONNACK", h)
	}
	return v, ack, err
}

// publish1 sends a QoS 1 PUBLISH and returns the PUBACK reason code, or the
// DISCONNECT reason code with isDisconnect set.
func (v *v5conn) publish1(id uint16, topic, payload string) (reason byte, isDisconnect bool, err error) {
	body := append(str(topic), byte(id>>8), byte(id))
	if v.ver == 5 {
		body = append(body, 0) // no properties
	}
	if err := v.trySend(0x32, append(body, payload...)); err != nil {
		return 0, false, err // closed while writing: no PUBACK
	}
	h, ack, err := v.read()
	if err != nil {
		return 0, false, err
	}
	switch h >> 4 {
	case 4: // PUBACK
		if len(ack) < 2 || uint16(ack[0])<<8|uint16(ack[1]) != id {
			return 0, false, fmt.Errorf("PUBACK %x for packet id %d", ack, id)
		}
		if len(ack) == 2 {
			return 0, false, nil // reason 0 may be omitted
		}
		return ack[2], false, nil
	case 14: // DISCONNECT
		if len(ack) == 0 {
			return 0, true, nil
		}
		return ack[0], true, nil
	}
	return 0, false, fmt.Errorf("unexpected packet %#x %x", h, ack)
}

func TestMQTT5ReasonCodes(t *testing.T) {
	rec := newRecorder()
	rec.decide = func(_ context.Context, c call, _ int) error {
		switch c.Payload {
		case "bad":
			return fmt.Errorf("schema: %w", fieldbroker.ErrRejected)
		case "fail":
			return errors.New("store: disk full")
		case "full":
			return fmt.Errorf("over its rate: %w", fieldbroker.ErrRefused)
		}
		return nil
	}
	b := startBroker(t, fieldbroker.Options{Handle: rec.handle, MaxPayload: 1024, Backoff: fastBackoff})
	v := dialV5(t, b.Addr(), "u-cam-01", "pw-cam-01", "cam-01-v5")
	for _, tc := range []struct {
		topic, payload string
		want           byte
	}{
		{"field/cam-01/alarm.sos", "good", 0x00},
		{"field/cam-02/alarm.sos", "good", 0x87},                    // not authorized
		{"field/cam-01/alarm.sos", "bad", 0x99},                     // payload format invalid
		{"field/cam-01/alarm.sos", strings.Repeat("x", 1500), 0x97}, // quota exceeded (too large)
		{"field/cam-01/alarm.sos", "full", 0x97},                    // ErrRefused: quota exceeded
		{"field/cam-01/alarm.sos", "good", 0x00},
	} {
		r, disc, err := v.publish1(7, tc.topic, tc.payload)
		if err != nil || disc || r != tc.want {
			t.Fatalf("publish %s %.10q: reason %#x disconnect %v err %v; want PUBACK %#x", tc.topic, tc.payload, r, disc, err, tc.want)
		}
	}
	// Transient failure: no PUBACK; DISCONNECT 0x89 (server busy), then EOF.
	r, disc, err := v.publish1(8, "field/cam-01/alarm.sos", "fail")
	if err != nil || !disc || r != 0x89 {
		t.Fatalf("transient failure: reason %#x disconnect %v err %v; want DISCONNECT 0x89", r, disc, err)
	}
	if h, body, err := v.read(); err == nil {
		t.Fatalf("after DISCONNECT: packet %#x %x", h, body)
	}
	s := b.Stats()
	if s.Accepted != 2 || s.ACLDenied != 1 || s.Malformed != 1 || s.TooLarge != 1 || s.HandlerErrors != 1 || s.Refused != 5 || s.Throttled != 3 {
		t.Fatalf("stats %+v", s.Counters)
	}
}

// Garbage on the wire closes that connection only.
func TestGarbageDoesNotHurtOthers(t *testing.T) {
	rec := newRecorder()
	b := startBroker(t, fieldbroker.Options{Handle: rec.handle, MaxPayload: 1024})
	good := connect(t, clientOpts(b.Addr(), "u-kiosk-1", "pw-kiosk-1", "kiosk-1", true))
	garbage := [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		{0x10, 0xff, 0xff, 0xff, 0xff, 0x7f},       // remaining length longer than 4 bytes
		{0x10, 0xff, 0xff, 0xff, 0x7f},             // a 256 MiB CONNECT
		{0x30, 0x05, 0x00, 0x01, 'a', 'b', 'c'},    // PUBLISH before CONNECT
		{0x10, 0x04, 0x00, 0x04, 'M', 'Q'},         // truncated CONNECT
		append([]byte{0x10, 0x0c}, str("MQTT")...), // CONNECT cut short, then EOF
	}
	for i, g := range garbage {
		c, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(g); err != nil {
			t.Fatalf("garbage %d: %v", i, err)
		}
		if i != len(garbage)-1 {
			_ = c.SetReadDeadline(time.Now().Add(wait))
			if n, err := c.Read(make([]byte, 64)); err == nil && n > 0 {
				t.Logf("garbage %d: broker answered %d bytes before closing", i, n)
			}
		}
		_ = c.Close()
	}
	// A logged-in device sending a malformed PUBLISH (QoS 3).
	v := dialV5(t, b.Addr(), "u-cam-01", "pw-cam-01", "cam-01-garbage")
	v.send(0x36, append(str("field/cam-01/x"), 0, 1, 0))
	if h, body, err := v.read(); err == nil && h>>4 != 14 {
		t.Fatalf("after a QoS 3 PUBLISH: packet %#x %x, want DISCONNECT or close", h, body)
	}
	publish(t, good, "field/kiosk-1/window.status", `{"state":"open"}`)
	// The protocol error ended cam-01's connection uncleanly: offline.
	rec.waitFor(t, "cam-01 offline", func(_, acc []call) bool {
		return count(acc, func(c call) bool { return c.Device == "cam-01" && c.Event == fieldbroker.EventOffline }) == 1
	})
	if _, acc := rec.snapshot(); len(acc) != 2 || count(acc, func(c call) bool { return c.Device == "kiosk-1" && c.Event == "window.status" }) != 1 {
		t.Fatalf("accepted %+v", acc)
	}
	if s := b.Stats(); s.Connects != 2 || s.AuthFailures != 0 {
		t.Fatalf("stats %+v", s.Counters)
	}
}

// mochi sets no deadline before CONNECT and its Close waits for every
// connection's goroutine: Close must drop sockets that never logged in.
func TestCloseDropsSilentConnections(t *testing.T) {
	cert, _ := selfSigned(t)
	b := startBroker(t, fieldbroker.Options{
		Listen:    "127.0.0.1:0",
		TLSListen: "127.0.0.1:0",
		TLS:       &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		Handle:    newRecorder().handle,
	})
	var conns []net.Conn
	for _, addr := range []string{b.Addr(), b.TLSAddr(), b.Addr()} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		conns = append(conns, c)
	}
	_, _ = conns[2].Write([]byte{0x10, 0x20, 0x00}) // half a CONNECT
	// A logged-in client is disconnected by mochi itself.
	connect(t, clientOpts(b.Addr(), "u-cam-01", "pw-cam-01", "cam-01", true))
	done := make(chan error, 1)
	go func() { done <- b.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait): // connectTimeout is longer: only the sweep ends these
		t.Fatal("Close waits for connections that never sent CONNECT")
	}
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(wait))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("connection %d still open after Close", i)
		}
	}
	if _, err := net.Dial("tcp", b.Addr()); err == nil {
		t.Error("still accepting after Close")
	}
}
