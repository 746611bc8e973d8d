package fieldbroker

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// willSink is where a device's will goes after the Handler has taken it:
// a topic no device may subscribe to, so mochi delivers it to nobody.
const willSink = "$fieldbroker/will-consumed"

// drainTimeout bounds the wait for a device to close its side after the
// broker half-closed the connection (dropConnection).
const drainTimeout = 5 * time.Second

// errClientID refuses a login whose client id is held by another device's
// session (it would inherit that device's downlink subscription).
var errClientID = errors.New("fieldbroker: client id in use by another device")

// hook is the mochi hook that implements authentication, ACLs and
// persist-before-PUBACK. Every method runs on the calling client's own
// goroutine (mochi attachClient → cl.Read → receivePacket).
type hook struct {
	mqtt.HookBase
	b *Broker
}

var provided = []byte{
	mqtt.OnConnect,
	mqtt.OnConnectAuthenticate,
	mqtt.OnACLCheck,
	mqtt.OnSessionEstablish,
	mqtt.OnSessionEstablished,
	mqtt.OnDisconnect,
	mqtt.OnPublish,
	mqtt.OnWill,
}

func (h *hook) ID() string { return "townlink-fieldbroker" }

func (h *hook) Provides(b byte) bool { return bytes.IndexByte(provided, b) >= 0 }

// authenticate returns the device whose username and password match, in
// time independent of the password (and nearly of whether the user exists).
func (b *Broker) authenticate(user, pass []byte) *device {
	d := b.byUser[string(user)]
	want := &b.dummy
	if d != nil {
		want = &d.pwHash
	}
	got := sha256.Sum256(pass)
	ok := subtle.ConstantTimeCompare(got[:], want[:]) == 1
	if d == nil || !ok {
		return nil
	}
	return d
}

// refuseConnect sends a not-authorised CONNACK in the client's protocol
// version (v3.1.1 has no 0x87: mochi maps 0x86 to return code 5).
func (b *Broker) refuseConnect(cl *mqtt.Client) {
	code := packets.ErrNotAuthorized
	if cl.Properties.ProtocolVersion < 5 {
		code = packets.ErrBadUsernameOrPassword
	}
	_ = b.srv.SendConnack(cl, code, false, nil)
}

// OnConnect runs before OnConnectAuthenticate. For a login that will pass,
// it refuses a will outside the device's prefix (or too large) and a client
// id that another device's session holds.
func (h *hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	b := h.b
	d := b.authenticate(pk.Connect.Username, pk.Connect.Password)
	if d == nil {
		return nil // OnConnectAuthenticate refuses and counts it
	}
	if pk.Connect.WillFlag {
		if _, err := mayPublish(d.id, pk.Connect.WillTopic); err != nil {
			b.count(d, cACLDenied)
			d.log.Warn("fieldbroker: login refused: will topic not allowed", "client", cl.ID, "remote", cl.Net.Remote, "error", err)
			b.refuseConnect(cl)
			return fmt.Errorf("fieldbroker: device %q: will: %w", d.id, err)
		}
		if len(pk.Connect.WillPayload) > b.max {
			b.count(d, cTooLarge)
			d.log.Warn("fieldbroker: login refused: will payload too large", "client", cl.ID, "bytes", len(pk.Connect.WillPayload), "max", b.max)
			b.refuseConnect(cl)
			return fmt.Errorf("fieldbroker: device %q: will payload of %d bytes exceeds %d", d.id, len(pk.Connect.WillPayload), b.max)
		}
	}
	if ex, ok := b.srv.Clients.Get(cl.ID); ok && (ex.Net.Inline || string(ex.Properties.Username) != d.user) {
		b.count(d, cAuthFailures)
		d.log.Warn("fieldbroker: login refused: client id belongs to another device's session", "client", cl.ID, "remote", cl.Net.Remote)
		b.refuseConnect(cl)
		return fmt.Errorf("%w: device %q, client id %q", errClientID, d.id, cl.ID)
	}
	return nil
}

// OnConnectAuthenticate accepts a configured username with its password.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	b := h.b
	if b.closing.Load() {
		return false
	}
	d := b.authenticate(pk.Connect.Username, pk.Connect.Password)
	if d == nil {
		known := b.byUser[string(pk.Connect.Username)]
		b.count(known, cAuthFailures)
		b.log.Warn("fieldbroker: login refused: bad username or password",
			"username", clip(string(pk.Connect.Username)), "known_user", known != nil, "client", clip(cl.ID), "remote", cl.Net.Remote)
		return false
	}
	b.count(d, cConnects)
	d.log.Info("fieldbroker: device connected", "client", cl.ID, "remote", cl.Net.Remote, "listener", cl.Net.Listener, "clean", pk.Connect.Clean)
	return true
}

// OnSessionEstablish marks the connection live before mochi takes over an
// older session of the same client id, so the old connection's end is not
// taken for the device going offline.
func (h *hook) OnSessionEstablish(cl *mqtt.Client, _ packets.Packet) {
	if d := h.b.deviceOf(cl); d != nil {
		h.b.addLive(d, cl)
	}
}

// OnSessionEstablished runs after mochi added the client to its list, so
// mochi's Close will disconnect it; Close need not drop its socket.
func (h *hook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) { markAttached(cl) }

// OnACLCheck: publishes are checked in OnPublish (which can acknowledge a
// refused QoS 1 message instead of closing the connection, as mochi does
// for a v3.1.1 client denied here); reads (SUBSCRIBE filters and delivery)
// are allowed only for the device's own downlink topic.
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline || write {
		return true
	}
	d := h.b.deviceOf(cl)
	if d == nil {
		return false
	}
	if maySubscribe(d.id, topic) {
		return true
	}
	h.b.count(d, cACLDenied)
	d.log.Warn("fieldbroker: subscription refused", "filter", clip(topic), "allowed", CmdTopic(d.id))
	return false
}

// OnPublish is the persist-before-PUBACK point: mochi v2.7.9
// server.go:913 runs this hook and writes the PUBACK only afterwards
// (server.go:952), on the same goroutine. See doc.go for the outcomes.
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil // Command: the gateway's own downlink
	}
	b := h.b
	d := b.deviceOf(cl)
	if d == nil {
		return pk, packets.ErrRejectPacket // cannot happen: every session logged in
	}
	event, err := mayPublish(d.id, pk.TopicName)
	if err != nil {
		b.count(d, cACLDenied)
		d.log.Warn("fieldbroker: publish refused", "topic", clip(pk.TopicName), "qos", pk.FixedHeader.Qos, "error", err)
		return pk, refusal(cl, pk, packets.ErrNotAuthorized)
	}
	if len(pk.Payload) > b.max {
		b.count(d, cTooLarge)
		d.log.Warn("fieldbroker: publish refused: payload too large", "event", event, "bytes", len(pk.Payload), "max", b.max)
		return pk, refusal(cl, pk, packets.ErrQuotaExceeded)
	}
	switch err := b.h(b.ctx, d.id, event, pk.Payload); {
	case err == nil:
		b.count(d, cAccepted)
		// Acknowledge, but forward to nobody and retain nothing (server.go:918-919, 935-968).
		return pk, packets.CodeSuccessIgnore
	case errors.Is(err, ErrRejected):
		b.count(d, cMalformed)
		d.log.Warn("fieldbroker: message rejected, acknowledged and dropped", "event", event, "packet_id", pk.PacketID, "error", err)
		return pk, refusal(cl, pk, packets.ErrPayloadFormatInvalid)
	default:
		b.count(d, cHandlerErrors)
		if pk.FixedHeader.Qos == 0 {
			d.log.Error("fieldbroker: QoS 0 message lost: handler failed", "event", event, "error", err)
			return pk, packets.ErrRejectPacket
		}
		d.log.Warn("fieldbroker: handler failed, message not acknowledged; closing the connection so the device resends",
			"event", event, "packet_id", pk.PacketID, "error", err)
		b.dropConnection(cl)
		// server.go:916-917: no PUBACK is written, the packet goes nowhere.
		return pk, packets.ErrRejectPacket
	}
}

// refusal is what OnPublish returns for a message that will never be
// accepted: for QoS 0 drop it; for QoS > 0 acknowledge it so the device
// does not resend it forever — with a reason code for MQTT 5
// (server.go:920-925; the error must be a bare packets.Code there), a plain
// PUBACK for 3.1.1 which has no reason codes (CodeSuccessIgnore:
// acknowledged and forwarded to nobody).
func refusal(cl *mqtt.Client, pk packets.Packet, v5 packets.Code) error {
	switch {
	case pk.FixedHeader.Qos == 0:
		return packets.ErrRejectPacket
	case cl.Properties.ProtocolVersion == 5:
		return v5
	default:
		return packets.CodeSuccessIgnore
	}
}

// dropConnection closes a client's connection from inside its own read
// loop so that the device resends what was not acknowledged. MQTT 5 gets a
// DISCONNECT 0x89 (server busy) first; 3.1.1 has no server DISCONNECT.
//
// The socket is half-closed and drained before it is closed: closing a
// socket with unread input makes the kernel send a RST, and a RST makes the
// device's kernel discard PUBACKs it has received but the device has not
// read yet, so the device would resend messages already accepted (measured:
// ~80 duplicates per failure in a 2,000-message burst). After the FIN the
// device sees EOF, closes its side, and the drain ends.
//
// mochi's read loop then sees the client closed and returns nil
// (clients.go:369-370): the device's will is not sent and no offline event
// is raised.
func (b *Broker) dropConnection(cl *mqtt.Client) {
	if cl.Properties.ProtocolVersion == 5 {
		_ = cl.WritePacket(packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Disconnect},
			ReasonCode:  packets.ErrServerBusy.Code,
			Properties:  packets.Properties{ReasonString: packets.ErrServerBusy.Reason},
		})
	}
	if nc := cl.Net.Conn; nc != nil && !b.closing.Load() {
		if hc, ok := nc.(interface{ CloseWrite() error }); ok && hc.CloseWrite() == nil {
			_ = nc.SetReadDeadline(time.Now().Add(drainTimeout))
			_, _ = io.Copy(io.Discard, nc)
		}
	}
	cl.Stop(packets.ErrServerBusy)
}

// OnWill takes a device's will (its last message, published by mochi when
// the connection ends uncleanly) through the Handler like any publish, and
// sends mochi's copy to a topic nobody can subscribe to. A will on a
// connection that was taken over by a new one of the same device, or sent
// while the broker closes, is not passed on.
func (h *hook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	b := h.b
	out := will
	out.TopicName, out.Retain = willSink, false
	d := b.deviceOf(cl)
	if d == nil || b.closing.Load() || b.stillOnline(d, cl) {
		return out, nil
	}
	event, err := mayPublish(d.id, will.TopicName)
	if err != nil { // refused at CONNECT already
		b.count(d, cACLDenied)
		return out, nil
	}
	switch err := b.h(b.ctx, d.id, event, will.Payload); {
	case err == nil:
		b.count(d, cAccepted)
	case errors.Is(err, ErrRejected):
		b.count(d, cMalformed)
		d.log.Warn("fieldbroker: will rejected", "event", event, "error", err)
	default:
		b.count(d, cHandlerErrors)
		d.log.Error("fieldbroker: will lost: handler failed", "event", event, "error", err)
	}
	return out, nil
}

// OnDisconnect raises EventOffline when the device's last connection ended
// uncleanly. mochi passes err != nil exactly when it also sent the will
// (server.go:476-482).
func (h *hook) OnDisconnect(cl *mqtt.Client, err error, _ bool) {
	b := h.b
	d := b.deviceOf(cl)
	if d == nil {
		return
	}
	if errors.Is(err, packets.ErrPacketTooLarge) {
		b.count(d, cTooLarge)
	}
	stillOnline := b.dropLive(d, cl)
	d.log.Info("fieldbroker: device disconnected", "client", cl.ID, "error", err, "cause", cl.StopCause(), "still_online", stillOnline)
	if err == nil || stillOnline || b.closing.Load() {
		return
	}
	b.count(d, cOffline)
	if herr := b.h(b.ctx, d.id, EventOffline, nil); herr != nil {
		b.count(d, cHandlerErrors)
		d.log.Error("fieldbroker: offline event lost: handler failed", "error", herr)
	}
}
