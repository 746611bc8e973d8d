package fieldbroker_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/townlink/townlink/gateway/fieldbroker"
)

// publishQ sends a PUBLISH of QoS 1 or 2 and returns the type (high nibble)
// and reason code of the packet that answers it.
func (v *v5conn) publishQ(qos byte, id uint16, topic, payload string) (typ, reason byte, err error) {
	body := append(str(topic), byte(id>>8), byte(id))
	if v.ver == 5 {
		body = append(body, 0) // no properties
	}
	if err := v.trySend(0x30|qos<<1, append(body, payload...)); err != nil {
		return 0, 0, err
	}
	h, ack, err := v.read()
	if err != nil {
		return 0, 0, err
	}
	typ = h >> 4
	switch {
	case typ == 14 && len(ack) > 0: // DISCONNECT
		return typ, ack[0], nil
	case typ == 14:
		return typ, 0, nil
	case len(ack) < 2 || uint16(ack[0])<<8|uint16(ack[1]) != id:
		return typ, 0, fmt.Errorf("ack %#x %x for packet id %d", h, ack, id)
	case len(ack) == 2:
		return typ, 0, nil
	}
	return typ, ack[2], nil
}

// A QoS 2 publish that is refused gets a PUBREC with the reason code
// (MQTT 5 §3.5.2.1, §4.3.3), never a PUBACK, which a QoS 2 sender does not
// expect; a stored one gets PUBREC 0, then PUBCOMP for its PUBREL.
func TestMQTT5QoS2RefusalIsAPubrec(t *testing.T) {
	rec := newRecorder()
	b := startBroker(t, fieldbroker.Options{Handle: rec.handle, MaxPayload: 64, Backoff: fastBackoff})
	v := dialV5(t, b.Addr(), "u-cam-01", "pw-cam-01", "cam-01")
	for i, tc := range []struct {
		topic, payload string
		want           byte
	}{
		{"field/cam-02/alarm.sos", "x", 0x87},                      // another device's topic
		{"field/cam-01/alarm.sos", string(make([]byte, 65)), 0x97}, // too large
	} {
		typ, r, err := v.publishQ(2, uint16(10+i), tc.topic, tc.payload)
		if err != nil || typ != 5 || r != tc.want {
			t.Fatalf("QoS 2 to %s: answer type %d reason %#x err %v; want PUBREC (5) %#x", tc.topic, typ, r, err, tc.want)
		}
	}
	typ, r, err := v.publishQ(2, 20, "field/cam-01/alarm.sos", "ok")
	if err != nil || typ != 5 || r != 0 {
		t.Fatalf("stored QoS 2: answer type %d reason %#x err %v; want PUBREC 0", typ, r, err)
	}
	v.send(0x62, []byte{0, 20}) // PUBREL
	if h, body, err := v.read(); err != nil || h>>4 != 7 {
		t.Fatalf("after PUBREL: packet %#x %x err %v, want PUBCOMP", h, body, err)
	}
	if _, acc := rec.snapshot(); len(acc) != 1 || acc[0].Payload != "ok" {
		t.Fatalf("stored %+v", acc)
	}
}

// mochi drops a PUBLISH to a $SYS topic before any hook (server.go
// processPublish): no PUBACK, no close, no log, and the QoS 1 sender waits
// forever. It is refused like any topic outside the device's prefix, and
// counted. A wildcard in a topic name is a protocol error: the connection
// is closed (MQTT 5: DISCONNECT 0x82).
func TestInvalidTopicNameRefused(t *testing.T) {
	rec := newRecorder()
	b := startBroker(t, fieldbroker.Options{Handle: rec.handle, Backoff: fastBackoff})
	for _, topic := range []string{"field/cam-01/#", "field/cam-01/a+b"} {
		v := dialV5(t, b.Addr(), "u-kiosk-1", "pw-kiosk-1", "kiosk-1")
		if typ, r, err := v.publishQ(1, 1, topic, "x"); err != nil || typ != 14 || r != 0x82 {
			t.Fatalf("MQTT 5 to %q: answer type %d reason %#x err %v; want DISCONNECT 0x82", topic, typ, r, err)
		}
	}
	topics := []string{"$SYS/broker/x", "$sys/x", "$SYS"}
	v := dialV5(t, b.Addr(), "u-cam-01", "pw-cam-01", "cam-01")
	for i, topic := range topics {
		for _, qos := range []byte{1, 2} {
			typ, r, err := v.publishQ(qos, uint16(2*i+int(qos)), topic, "x")
			want := byte(4) // PUBACK
			if qos == 2 {
				want = 5 // PUBREC
			}
			if err != nil || typ != want || r != 0x87 {
				t.Fatalf("MQTT 5 QoS %d to %q: answer type %d reason %#x err %v; want type %d reason 0x87", qos, topic, typ, r, err, want)
			}
		}
	}
	if typ, r, err := v.publishQ(1, 99, "field/cam-01/alarm.sos", "ok"); err != nil || typ != 4 || r != 0 {
		t.Fatalf("after the refusals: type %d reason %#x err %v", typ, r, err)
	}
	// MQTT 3.1.1 has no negative PUBACK: the connection is closed.
	for _, topic := range topics {
		v3 := dialRaw(t, b.Addr(), 4, "u-cam-02", "pw-cam-02", "cam-02")
		if typ, r, err := v3.publishQ(1, 1, topic, "x"); err == nil {
			t.Fatalf("MQTT 3.1.1 to %q: answer type %d reason %#x, want the connection closed", topic, typ, r)
		}
	}
	if _, acc := rec.snapshot(); count(acc, func(c call) bool { return c.Event != fieldbroker.EventOffline }) != 1 {
		t.Fatalf("stored %+v", acc)
	}
	s := b.Stats()
	if n := uint64(3 * len(topics)); s.ACLDenied != n || s.Refused != n {
		t.Fatalf("ACLDenied %d Refused %d, want %d each", s.ACLDenied, s.Refused, n)
	}
}

// A QoS 2 PUBLISH sent again before its PUBREL (its PUBREC was lost) is
// acknowledged again with PUBREC 0 and not stored twice (MQTT 5
// §4.3.3, [MQTT-4.3.3-10]: "the receiver MUST acknowledge any subsequent
// PUBLISH packet with the same Packet Identifier by sending a PUBREC").
func TestQoS2ResendBeforePubrel(t *testing.T) {
	rec := newRecorder()
	b := startBroker(t, fieldbroker.Options{Handle: rec.handle})
	for _, ver := range []byte{5, 4} {
		v := dialRaw(t, b.Addr(), ver, "u-cam-01", "pw-cam-01", "cam-01")
		payload := fmt.Sprintf("sos-v%d", ver)
		if typ, r, err := v.publishQ(2, 30, "field/cam-01/alarm.sos", payload); err != nil || typ != 5 || r != 0 {
			t.Fatalf("v%d first: answer type %d reason %#x err %v; want PUBREC 0", ver, typ, r, err)
		}
		// The same message again, DUP set.
		body := append(str("field/cam-01/alarm.sos"), 0, 30)
		if ver == 5 {
			body = append(body, 0)
		}
		v.send(0x3c, append(body, payload...))
		h, ack, err := v.read()
		if err != nil || h>>4 != 5 || len(ack) < 2 || ack[1] != 30 || (len(ack) > 2 && ack[2] != 0) {
			t.Fatalf("v%d resend: packet %#x %x err %v; want PUBREC 0 for packet id 30", ver, h, ack, err)
		}
		v.send(0x62, []byte{0, 30}) // PUBREL
		if h, body, err := v.read(); err != nil || h>>4 != 7 {
			t.Fatalf("v%d after PUBREL: packet %#x %x err %v, want PUBCOMP", ver, h, body, err)
		}
		if _, acc := rec.snapshot(); count(acc, func(c call) bool { return c.Payload == payload }) != 1 {
			t.Fatalf("v%d: stored %+v, want %s once", ver, acc, payload)
		}
	}
}

// The same after a reconnect: a persistent session (MQTT 3.1.1
// CleanSession=false, MQTT 5 Session Expiry > 0) keeps the packet id
// waiting for its PUBREL, and the resent message is not stored twice.
func TestQoS2ResendAfterReconnect(t *testing.T) {
	rec := newRecorder()
	b := startBroker(t, fieldbroker.Options{Handle: rec.handle})
	for _, ver := range []byte{5, 4} {
		payload := fmt.Sprintf("sos-v%d", ver)
		id := 36 + ver
		pub := append(str("field/cam-01/alarm.sos"), 0, id)
		if ver == 5 {
			pub = append(pub, 0)
		}
		pub = append(pub, payload...)
		var v *v5conn
		for i, flags := range []byte{0x30 | 2<<1, 0x38 | 2<<1} { // first, then DUP
			if v != nil {
				_ = v.c.Close() // the PUBREC is "lost": no PUBREL
			}
			v = dialPersistent(t, b.Addr(), ver)
			v.send(flags, pub)
			// mochi may resend the PUBREC it keeps for the session first.
			if h, ack, err := v.read(); err != nil || h>>4 != 5 || len(ack) < 2 || ack[1] != id || (len(ack) > 2 && ack[2] != 0) {
				t.Fatalf("v%d send %d: packet %#x %x err %v; want PUBREC 0 for packet id %d", ver, i, h, ack, err, id)
			}
		}
		v.send(0x62, []byte{0, id}) // PUBREL
		for {
			h, body, err := v.read()
			if err != nil {
				t.Fatalf("v%d: no PUBCOMP after PUBREL: %v", ver, err)
			}
			if h>>4 == 7 {
				break
			}
			if h>>4 != 5 || len(body) > 2 && body[2] != 0 { // a second PUBREC 0 for the resend is fine
				t.Fatalf("v%d after PUBREL: packet %#x %x, want PUBCOMP (or PUBREC 0)", ver, h, body)
			}
		}
		if _, acc := rec.snapshot(); count(acc, func(c call) bool { return c.Payload == payload }) != 1 {
			t.Fatalf("v%d: stored %+v, want %s once", ver, acc, payload)
		}
	}
}

// dialPersistent logs cam-01 in without a clean start (MQTT 5: session
// expiry 1 h) and reads the CONNACK.
func dialPersistent(t *testing.T, addr string, ver byte) *v5conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	v := &v5conn{t: t, c: c, rd: bufio.NewReader(c), ver: ver}
	body := append(str("MQTT"), ver, 0x80|0x40, 0, 30) // user+pass, no clean start
	if ver == 5 {
		body = append(body, 5, 0x11, 0, 0, 0x0e, 0x10) // session expiry 3600 s
	}
	body = append(append(append(body, str("cam-01")...), str("u-cam-01")...), str("pw-cam-01")...)
	v.send(0x10, body)
	if h, ack, err := v.read(); err != nil || h != 0x20 || len(ack) < 2 || ack[1] != 0 {
		t.Fatalf("CONNACK %#x %x err %v", h, ack, err)
	}
	return v
}

// Packet ids are chosen by each side on its own (MQTT 3.1.1 §2.3.1): a
// device's PUBLISH that happens to use the id of a downlink command still
// waiting for the device's PUBACK must not cancel that command. mochi keeps
// both directions in one inflight table and deleted the command there
// (server.go:894-902), so a persistent session never got it again.
func TestDevicePacketIDDoesNotCancelACommand(t *testing.T) {
	rec := newRecorder()
	b := startBroker(t, fieldbroker.Options{Handle: rec.handle})
	v := dialPersistent(t, b.Addr(), 4)
	v.send(0x82, append(append([]byte{0, 1}, str(fieldbroker.CmdTopic("cam-01"))...), 1)) // SUBSCRIBE QoS 1
	if h, body, err := v.read(); err != nil || h>>4 != 9 || len(body) != 3 || body[2] != 1 {
		t.Fatalf("SUBACK: %#x %x %v", h, body, err)
	}
	if err := b.Command("cam-01", []byte("photo")); err != nil {
		t.Fatal(err)
	}
	h, body, err := v.read()
	if err != nil || h>>4 != 3 || (h>>1)&3 != 1 {
		t.Fatalf("command: %#x %x %v", h, body, err)
	}
	tl := int(body[0])<<8 | int(body[1])
	id := uint16(body[2+tl])<<8 | uint16(body[3+tl])
	// No PUBACK for the command; the device publishes with the same id.
	if typ, r, err := v.publishQ(1, id, "field/cam-01/alarm.sos", "sos"); err != nil || typ != 4 || r != 0 {
		t.Fatalf("publish with packet id %d: type %d reason %#x err %v", id, typ, r, err)
	}
	_ = v.c.Close()
	v = dialPersistent(t, b.Addr(), 4)
	h, body, err = v.read()
	if err != nil || h>>4 != 3 || !strings.HasSuffix(string(body), "photo") {
		t.Fatalf("after reconnecting: %#x %q %v; want the command again", h, body, err)
	}
}
