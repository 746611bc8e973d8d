// Package fieldbroker is the gateway's embedded MQTT broker for recorders
// and kiosks (protocols.md §5–6), built on mochi-mqtt v2.7.9. The gateway
// is its only consumer: a device's message goes to the Handler, never to
// other clients.
//
// # Logins and topics
//
// A client logs in with a configured username and that device's password
// (compared in constant time over SHA-256 digests); anything else is
// refused at CONNECT (return code 5 / reason 0x86) and counted. The client
// id is free, but the device is always the one of the username, never the
// one named in a topic. A client id held by another device's session is
// refused, so no device can inherit another's downlink subscription.
//
// A device publishes to field/{device-id}/{event} with its own id and an
// event [a-z0-9._-]{1,64} other than "cmd", and subscribes only to
// field/{device-id}/cmd, the downlink ([Broker.Command]). A will must name
// a topic the device may publish to, or the login is refused.
//
// # Persist before PUBACK (mochi v2.7.9, server.go processPublish)
//
// mochi calls the OnPublish hooks (server.go:913) on the client's own read
// goroutine (attachClient → cl.Read(s.receivePacket), server.go:476) and
// writes the PUBACK only afterwards (server.go:941-952). The broker calls
// the Handler inside OnPublish, so:
//
//   - Handler returns nil: the hook returns packets.CodeSuccessIgnore;
//     mochi marks the packet ignored (server.go:918-919), writes the PUBACK
//     (server.go:952) and forwards and retains nothing (publishToSubscribers
//     and retainMessage return early on Ignore).
//   - Handler returns an error wrapping ErrRejected (malformed, schema): a
//     message that will never become good. QoS 1/2 is acknowledged so the
//     device does not resend it forever: MQTT 3.1.1 gets a plain PUBACK
//     (CodeSuccessIgnore as above; 3.1.1 §3.3.5 allows a positive ack of an
//     unauthorised publish), MQTT 5 a PUBACK with reason 0x99 (the hook
//     returns the bare packets.Code; server.go:920-925 writes it). Counted
//     as malformed.
//   - Any other error (store full, disk error, ctx cancelled): transient.
//     The hook closes the connection (MQTT 5: DISCONNECT 0x89 first; the
//     socket is half-closed and drained so that PUBACKs already written
//     are not destroyed by a RST) and returns packets.ErrRejectPacket, for
//     which processPublish returns nil before any acknowledgement is built
//     (server.go:916-917), for 3.1.1 and 5 alike. Returning ErrRejectPacket alone would not be enough: a
//     3.1.1 client resends an unacknowledged PUBLISH only after it
//     reconnects, and mochi keeps reading its later messages
//     on the same connection. Closing the connection forces the reconnect, and a
//     persistent-session client (CleanSession=false) resends the message
//     with DUP set. Counted as handler_errors. A QoS 0 message is lost.
//     (Any other error type from a hook would be a trap: for 3.1.1 mochi
//     falls through and acknowledges and forwards the message.)
//
// The Handler therefore sees a message at least once; duplicates carry the
// same msg_id (protocols.md §5.2) for de-duplication downstream.
//
// A publish outside the device's prefix and a payload above MaxPayload are
// permanent too: acknowledged (3.1.1) or answered with reason 0x87 / 0x97
// (5), dropped, counted. mochi's own ACL refusal would instead close a
// 3.1.1 connection (server.go:867-874), and a persistent client would then
// resend the same refused message after every reconnect. A packet larger
// than twice MaxPayload (plus topic room) is not read at all
// (clients.go:456, mochi's MaximumPacketSize): the connection is closed and
// counted as too_large; such a device resends it on reconnect.
//
// # Offline and wills
//
// When a device's last connection ends uncleanly (mochi passes a non-nil
// error to OnDisconnect exactly when it also sends the will:
// server.go:476-486), the broker calls Handle(ctx, id, EventOffline, nil).
// Not after a clean DISCONNECT, a session take-over by the same device, the
// broker's own transient disconnect above, or Close. A device's own will
// does not pass through OnPublish in mochi (sendLWT, server.go:1516-1552,
// calls only OnWill and publishToSubscribers); the broker handles it in
// OnWill like a publish (before the offline event) and points mochi's copy
// at a topic nobody can subscribe to. A will is handled at once even with
// an MQTT 5 will delay.
//
// # Limits
//
// mochi's default inflight, receive-maximum and write-queue limits drop
// messages in bursts; they are raised. Each client runs on its own
// goroutine, so a Handler that blocks stalls only that device; Close
// cancels the Handler's context and waits for every client goroutine.
// Sessions of disconnected persistent clients expire after 7 days.
//
// The listeners are the package's own (listen.go): a connection must
// complete CONNECT (and TLS) within 30 s, because mochi sets no deadline
// before CONNECT; Close drops sockets that never logged in, which mochi's
// Close would otherwise wait for forever; and the accept loop counts each
// connection in mochi's ClientsWg before starting its goroutine, which
// mochi's own listeners do not (a WaitGroup race with Close).
package fieldbroker
