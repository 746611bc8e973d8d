package fieldbroker

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
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

// hook is the mochi hook that implements authentication, ACLs and
// persist-before-PUBACK. Every method runs on the calling client's own
// goroutine (mochi attachClient → cl.Read → receivePacket).
type hook struct {
	mqtt.HookBase
	b *Broker
	// held is, per client, the downlink command that mochi is about to drop
	// from its inflight table because the device's PUBLISH being processed
	// uses the same packet id (OnPacketRead); OnPacketProcessed puts it back.
	held sync.Map // *mqtt.Client → packets.Packet
}

var provided = []byte{
	mqtt.OnConnect,
	mqtt.OnConnectAuthenticate,
	mqtt.OnACLCheck,
	mqtt.OnSessionEstablish,
	mqtt.OnSessionEstablished,
	mqtt.OnDisconnect,
	mqtt.OnPacketRead,
	mqtt.OnPacketProcessed,
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

// OnConnect runs before OnConnectAuthenticate, on every CONNECT. It caps
// the keepalive, and for a login that will pass it binds the session to the
// device (the client id is the device id, whatever the client sent) and
// refuses a will outside the device's prefix (or too large).
func (h *hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	b := h.b
	// mochi sets the read deadline from cl.State.Keepalive right after this
	// hook (server.go attachClient) and announces it to MQTT 5 clients in
	// the CONNACK when ServerKeepalive is set (SendConnack).
	if ka := pk.Connect.Keepalive; ka == 0 || ka > b.keep {
		cl.State.Keepalive, cl.State.ServerKeepalive = b.keep, true
	}
	d := b.authenticate(pk.Connect.Username, pk.Connect.Password)
	if d == nil {
		return nil // OnConnectAuthenticate refuses and counts it
	}
	// One session per device: mochi keys sessions by cl.ID
	// (inheritClientSession), so a second connection of the device takes
	// the first one over, and no device can take or block another's id.
	if cl.Properties.Props.AssignedClientID != "" { // the client sent none (MQTT 5)
		cl.Properties.Props.AssignedClientID = d.id
	}
	cl.ID = d.id
	if pk.Connect.WillFlag {
		if _, err := mayPublish(d.id, pk.Connect.WillTopic); err != nil {
			b.count(d, cACLDenied)
			b.note(slog.LevelWarn, d, "fieldbroker: login refused: will topic not allowed", "remote", cl.Net.Remote, "error", err)
			b.refuseConnect(cl)
			return fmt.Errorf("fieldbroker: device %q: will: %w", d.id, err)
		}
		if len(pk.Connect.WillPayload) > b.max {
			b.count(d, cTooLarge)
			b.note(slog.LevelWarn, d, "fieldbroker: login refused: will payload too large", "bytes", len(pk.Connect.WillPayload), "max", b.max)
			b.refuseConnect(cl)
			return fmt.Errorf("fieldbroker: device %q: will payload of %d bytes exceeds %d", d.id, len(pk.Connect.WillPayload), b.max)
		}
	}
	return nil
}

// OnConnectAuthenticate accepts a configured username with its password.
// Before it answers, it waits out the back-off of the source address and
// the username (after failed logins) and of the device (after refused
// messages) — for a right password as well as a wrong one, so the wait
// tells a guesser nothing and a guess costs the full wait while it holds
// one of the address's MaxPendingPerAddr slots.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	b := h.b
	if b.closing.Load() {
		return false
	}
	addr := remoteAddr(cl)
	known := b.byUser[string(pk.Connect.Username)]
	ukey := "u\x00?" // unknown usernames share one entry
	if known != nil {
		ukey = "u\x00" + known.user
	}
	keys := []string{"a\x00" + addr, ukey}
	now := time.Now()
	wait := b.logins.delay(now, keys...)
	d := b.authenticate(pk.Connect.Username, pk.Connect.Password)
	if d != nil {
		wait = max(wait, d.refusalWait(now, b.bo))
	}
	if wait > 0 {
		b.count(known, cThrottled)
		b.note(slog.LevelInfo, known, "fieldbroker: login delayed by back-off", "remote_addr", addr, "wait", wait)
		if !b.pause(cl, wait) {
			return false // closing
		}
	}
	if d == nil {
		b.logins.fail(time.Now(), keys...)
		b.count(known, cAuthFailures)
		// Not the username: a device may have its password in that field.
		b.note(slog.LevelWarn, known, "fieldbroker: login refused: bad username or password", "remote_addr", addr, "known_user", known != nil)
		return false
	}
	b.count(d, cConnects)
	if c := connOf(cl); c != nil {
		c.loggedIn()
	}
	b.note(slog.LevelInfo, d, "fieldbroker: device connected", "remote", cl.Net.Remote, "listener", cl.Net.Listener, "clean", pk.Connect.Clean, "keepalive", cl.State.Keepalive)
	return true
}

// remoteAddr is the client's source address (IP).
func remoteAddr(cl *mqtt.Client) string {
	if c := connOf(cl); c != nil {
		return c.addr
	}
	return cl.Net.Remote
}

// pause waits d on a client's goroutine (before its CONNACK or a refusal
// PUBACK), with the connection's deadline moved out of the way and then
// set as mochi would (clients.go refreshDeadline). It reports false if the
// broker closed meanwhile.
func (b *Broker) pause(cl *mqtt.Client, d time.Duration) bool {
	nc := cl.Net.Conn
	if nc != nil {
		_ = nc.SetDeadline(time.Now().Add(d + connectTimeout))
	}
	ok := sleep(b.ctx, d)
	if nc != nil {
		ka := time.Duration(cl.State.Keepalive) * time.Second
		_ = nc.SetDeadline(time.Now().Add(ka + ka/2))
	}
	return ok
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
	h.b.note(slog.LevelWarn, d, "fieldbroker: subscription refused", "filter", clip(topic), "allowed", CmdTopic(d.id))
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
		return pk, b.refuseTopic(cl, d, pk, err)
	}
	if len(pk.Payload) > b.max {
		b.count(d, cTooLarge)
		b.note(slog.LevelWarn, d, "fieldbroker: publish refused: payload too large", "event", event, "bytes", len(pk.Payload), "max", b.max)
		return pk, b.refuse(cl, d, pk, packets.ErrQuotaExceeded, false)
	}
	switch err := b.h(b.ctx, d.id, event, pk.Payload); {
	case err == nil:
		b.count(d, cAccepted)
		b.add(d, cBytes, uint64(len(pk.Payload)))
		d.stored()
		// Acknowledge, but forward to nobody and retain nothing (server.go:918-919, 935-968).
		return pk, packets.CodeSuccessIgnore
	case errors.Is(err, ErrRejected):
		b.count(d, cMalformed)
		b.note(slog.LevelWarn, d, "fieldbroker: message rejected by the gateway, not acknowledged", "event", event, "error", err)
		return pk, b.refuse(cl, d, pk, packets.ErrPayloadFormatInvalid, false)
	case errors.Is(err, ErrRefused):
		b.note(slog.LevelWarn, d, "fieldbroker: message refused by the gateway, not acknowledged", "event", event, "error", err)
		return pk, b.refuse(cl, d, pk, packets.ErrQuotaExceeded, false)
	default:
		b.count(d, cHandlerErrors)
		b.note(slog.LevelWarn, d, "fieldbroker: handler failed, message not acknowledged; closing the connection so the device resends",
			"event", event, "error", err)
		return pk, b.refuse(cl, d, pk, packets.ErrServerBusy, true)
	}
}

// OnPacketRead refuses a PUBLISH whose topic name mochi would drop without
// a word: processPublish (server.go:859-861) returns before any hook, ack,
// log or close for a topic that starts with $SYS, so a QoS 1 sender would
// wait for its PUBACK forever. Such a topic is never the device's own
// (mayPublish says why); it is refused like any other topic outside the
// prefix, and processPublish then drops the packet. (A topic holding a
// wildcard is a protocol error that mochi answers itself, before that:
// packets.PublishValidate, DISCONNECT 0x82 or a closed connection.)
func (h *hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type != packets.Publish || cl.Net.Inline {
		return pk, nil
	}
	if h.b.qos2Again(cl, &pk) {
		return pk, nil
	}
	h.holdCommand(cl, pk)
	if strings.ContainsAny(pk.TopicName, "+#") || mqtt.IsValidFilter(pk.TopicName, true) {
		return pk, nil
	}
	d := h.b.deviceOf(cl)
	if d == nil {
		return pk, nil // not logged in: mochi refuses a PUBLISH before CONNECT
	}
	_, err := mayPublish(d.id, pk.TopicName)
	if err == nil { // cannot happen: no device topic holds '+', '#' or '$'
		err = fmt.Errorf("%w: %q is not a valid topic name", ErrTopic, clip(pk.TopicName))
	}
	_ = h.b.refuseTopic(cl, d, pk, err) // acknowledged negatively or closed; nothing left for mochi
	return pk, nil
}

// holdCommand keeps the downlink command that waits for the device's
// PUBACK under the packet id of the device's QoS 1 PUBLISH. Packet ids are
// chosen by each side on its own (MQTT 3.1.1 §2.3.1, MQTT 5 §2.2.1), but
// mochi keeps both directions in one inflight table and deletes the entry
// under a received PUBLISH's id (server.go:894-902): the command would be
// forgotten, never resent to a persistent session. (For a QoS 2 PUBLISH
// mochi puts its PUBREC under the same id, so the command cannot be kept.)
func (h *hook) holdCommand(cl *mqtt.Client, pk packets.Packet) {
	if pk.FixedHeader.Qos != 1 {
		return
	}
	if prev, ok := cl.State.Inflight.Get(pk.PacketID); ok && prev.FixedHeader.Type == packets.Publish {
		h.held.Store(cl, prev)
	}
}

// OnPacketProcessed puts back a command holdCommand kept, unless a new one
// took its packet id meanwhile.
func (h *hook) OnPacketProcessed(cl *mqtt.Client, _ packets.Packet, _ error) {
	v, ok := h.held.LoadAndDelete(cl)
	if !ok {
		return
	}
	cmd := v.(packets.Packet)
	if _, busy := cl.State.Inflight.Get(cmd.PacketID); !busy {
		cl.State.Inflight.Set(cmd)
	}
}

// qos2Again answers a QoS 2 PUBLISH whose packet id still waits for its
// PUBREL — the device sends it again because it did not get the PUBREC —
// with PUBREC 0 (MQTT 5 §4.3.3, [MQTT-4.3.3-10]) and has mochi drop it
// without storing it twice. mochi's own answer is PUBREC 0x91 "packet
// identifier in use" (server.go:894-897), which tells an MQTT 5 device
// that a message the gateway stored was refused. The packet is dropped by
// renaming it to a $SYS topic, which processPublish ignores before
// anything else (server.go:859-861).
func (b *Broker) qos2Again(cl *mqtt.Client, pk *packets.Packet) bool {
	if pk.FixedHeader.Qos != 2 {
		return false
	}
	if prev, ok := cl.State.Inflight.Get(pk.PacketID); !ok || prev.FixedHeader.Type != packets.Pubrec {
		return false
	}
	if err := cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrec}, PacketID: pk.PacketID}); err != nil {
		b.note(slog.LevelInfo, b.deviceOf(cl), "fieldbroker: PUBREC of a resent QoS 2 message not written", "error", err)
	}
	pk.TopicName = qos2Dropped
	return true
}

// qos2Dropped is the topic a resent QoS 2 PUBLISH is renamed to so that
// mochi drops it (it starts with $SYS: mqtt.IsValidFilter).
const qos2Dropped = "$SYS/fieldbroker/qos2-resent"

// refuseTopic refuses a publish outside the device's own topics.
func (b *Broker) refuseTopic(cl *mqtt.Client, d *device, pk packets.Packet, err error) error {
	b.count(d, cACLDenied)
	b.note(slog.LevelWarn, d, "fieldbroker: publish refused: topic not allowed", "topic", clip(pk.TopicName), "qos", pk.FixedHeader.Qos, "error", err)
	return b.refuse(cl, d, pk, packets.ErrNotAuthorized, false)
}

// refuse is what OnPublish returns for a message the gateway does not
// store; it is never acknowledged as stored, and the device is throttled:
//   - QoS 0: dropped, after the device's back-off delay;
//   - MQTT 5, not transient: a PUBACK (QoS 1) or PUBREC (QoS 2) with
//     reason v5, after the back-off delay, written by nack;
//   - MQTT 3.1.1, or transient: no PUBACK, the connection is closed
//     (dropConnection; MQTT 5 gets DISCONNECT 0x89 first) and the device's
//     next CONNACK waits out the back-off.
//
// packets.ErrRejectPacket makes processPublish return before any
// acknowledgement (server.go:916-917). (Any other error type from a hook
// would be a trap: for 3.1.1 mochi falls through and acknowledges and
// forwards the message.)
func (b *Broker) refuse(cl *mqtt.Client, d *device, pk packets.Packet, v5 packets.Code, transient bool) error {
	b.count(d, cRefused)
	n := d.refusedNow(time.Now(), b.bo)
	switch {
	case pk.FixedHeader.Qos == 0:
		b.throttle(cl, d, n)
		return packets.ErrRejectPacket
	case cl.Properties.ProtocolVersion == 5 && !transient:
		b.throttle(cl, d, n)
		b.nack(cl, pk, v5)
		return packets.ErrRejectPacket
	default:
		b.dropConnection(cl)
		return packets.ErrRejectPacket
	}
}

// nack writes the negative acknowledgement of an MQTT 5 QoS 1 or 2
// PUBLISH: a PUBACK for QoS 1, a PUBREC for QoS 2 (MQTT 5 §4.3.3: a PUBREC
// with a reason code of 0x80 or above ends the exchange). mochi's own
// negative ack (server.go:920-925) is always a PUBACK, which a QoS 2 sender
// does not expect; so the hook writes it and returns ErrRejectPacket.
func (b *Broker) nack(cl *mqtt.Client, pk packets.Packet, code packets.Code) {
	typ := byte(packets.Puback)
	if pk.FixedHeader.Qos == 2 {
		typ = packets.Pubrec
	}
	if err := cl.WritePacket(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: typ},
		PacketID:    pk.PacketID,
		ReasonCode:  code.Code,
		Properties:  packets.Properties{ReasonString: code.Reason},
	}); err != nil {
		b.note(slog.LevelInfo, b.deviceOf(cl), "fieldbroker: negative acknowledgement not written", "error", err)
	}
}

// throttle delays a device that stays connected after its n-th refusal in
// a row (the first one passes at once).
func (b *Broker) throttle(cl *mqtt.Client, d *device, n int) {
	if wait := b.bo.wait(n - 1); wait > 0 {
		b.count(d, cThrottled)
		b.pause(cl, wait)
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
		b.add(d, cBytes, uint64(len(will.Payload)))
	case errors.Is(err, ErrRejected):
		b.count(d, cMalformed)
		b.count(d, cRefused)
		b.note(slog.LevelWarn, d, "fieldbroker: will lost: rejected by the gateway", "event", event, "error", err)
	case errors.Is(err, ErrRefused):
		b.count(d, cRefused)
		b.note(slog.LevelWarn, d, "fieldbroker: will lost: refused by the gateway", "event", event, "error", err)
	default:
		b.count(d, cHandlerErrors)
		b.count(d, cRefused)
		b.note(slog.LevelError, d, "fieldbroker: will lost: handler failed", "event", event, "error", err)
	}
	return out, nil
}

// OnDisconnect raises EventOffline when the device's last connection ended
// uncleanly. mochi passes err != nil exactly when it also sent the will
// (server.go:476-482).
func (h *hook) OnDisconnect(cl *mqtt.Client, err error, _ bool) {
	h.held.Delete(cl) // a PUBLISH that ended the connection (OnPacketProcessed not reached)
	b := h.b
	d := b.deviceOf(cl)
	if d == nil {
		return
	}
	if errors.Is(err, packets.ErrPacketTooLarge) {
		// Not read at all (clients.go ReadFixedHeader): refused, and the
		// device's next CONNACK waits out its back-off.
		b.count(d, cTooLarge)
		b.count(d, cRefused)
		d.refusedNow(time.Now(), b.bo)
		b.note(slog.LevelWarn, d, "fieldbroker: packet too large to read, connection closed", "max_payload", b.max)
	}
	stillOnline := b.dropLive(d, cl)
	b.note(slog.LevelInfo, d, "fieldbroker: device disconnected", "error", err, "cause", cl.StopCause(), "still_online", stillOnline)
	if err == nil || stillOnline || b.closing.Load() {
		return
	}
	b.count(d, cOffline)
	if herr := b.h(b.ctx, d.id, EventOffline, nil); herr != nil {
		b.count(d, cHandlerErrors)
		b.note(slog.LevelError, d, "fieldbroker: offline event lost: handler failed", "error", herr)
	}
}

// refusedNow records a refusal of one of the device's messages and returns
// how many in a row there have been (forgotten after 2·Max without one).
func (d *device) refusedNow(now time.Time, bo Backoff) int {
	d.refuseMu.Lock()
	defer d.refuseMu.Unlock()
	if now.Sub(d.lastRef) >= 2*bo.Max {
		d.refused = 0
	}
	d.refused++
	d.lastRef = now
	return d.refused
}

// stored ends a run of refusals.
func (d *device) stored() {
	d.refuseMu.Lock()
	defer d.refuseMu.Unlock()
	d.refused = 0
}

// refusalWait is the delay due before the device's next CONNACK.
func (d *device) refusalWait(now time.Time, bo Backoff) time.Duration {
	d.refuseMu.Lock()
	defer d.refuseMu.Unlock()
	if d.refused == 0 || now.Sub(d.lastRef) >= 2*bo.Max {
		return 0
	}
	return bo.wait(d.refused)
}
