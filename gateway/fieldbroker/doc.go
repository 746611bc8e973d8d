// Package fieldbroker is the gateway's embedded MQTT broker for recorders
// and kiosks (protocols.md §5–6), built on mochi-mqtt v2.7.9. The gateway
// is its only consumer: a device's message goes to the Handler, never to
// other clients. It is meant to hold against anyone on the township LAN and
// never to acknowledge a message it did not store.
//
// # Before login
//
// mochi allocates a client for every accepted socket and then a buffer of
// whatever size the CONNECT announces, before the password is checked
// (server.go attachClient, clients.go ReadPacket). The listeners are the
// package's own (listen.go), so a connection first needs a slot among
// MaxPending (total) and MaxPendingPerAddr (per source IP) connections that
// have not logged in, and must send a CONNECT of at most MaxConnectSize
// bytes (4 KiB by default) within 30 s (TLS handshake included). The
// package reads that CONNECT itself — the remaining length byte by byte,
// refusing a larger one before allocating it — and only then hands the
// connection to mochi, replaying the packet. Anything else is closed and
// counted (Stats.PreAuthDropped). A slot is released at login or when the
// connection ends. MaxClients bounds logged-in connections (mochi's
// MaximumClients; CONNACK "server unavailable" beyond it).
//
// # Logins and sessions
//
// A client logs in with a configured username and that device's password
// (compared in constant time over SHA-256 digests); anything else is
// refused at CONNECT (return code 5 / reason 0x86) and counted. Failed
// logins are remembered per source address and per username (unknown
// usernames share one entry): the next CONNACK from that address or for
// that username — right password or wrong — waits Backoff (First, doubling
// to Max, forgotten after 2·Max without a failure) while it holds its
// pending slot. So a guesser gets at most MaxPendingPerAddr guesses per
// back-off interval and learns nothing from the timing; the real device
// still gets in, after at most Max.
//
// The session is the device's: whatever client id a device sends, the
// broker replaces it with the device id (mochi keys sessions by client id,
// server.go inheritClientSession). So a device can neither take nor block
// another device's session and downlink, and each device has one session:
// a second connection of the same device takes the first one over (MQTT 5
// clients that sent an empty client id are told the device id as Assigned
// Client Identifier). Two clients sharing one credential therefore push
// each other off; give each its own device entry.
//
// A client asking keepalive 0 or more than Keepalive (120 s by default)
// gets Keepalive: MQTT 5 is told in the CONNACK (Server Keep Alive); an
// MQTT 3.1.1 client must ping within it or is dropped after 1.5×Keepalive.
// Topic aliases are refused (TopicAliasMaximum 0: mochi would store an alias
// before any hook sees the publish).
//
// A device publishes to field/{device-id}/{event} with its own id and an
// event [a-z0-9._-]{1,64} other than "cmd", and subscribes only to
// field/{device-id}/cmd, the downlink ([Broker.Command]). A publish to a
// $SYS topic, which mochi would drop without an answer, is refused like any
// other topic outside the prefix; a wildcard in a topic name is a protocol
// error (connection closed, MQTT 5 DISCONNECT 0x82). A will must name
// a topic the device may publish to, or the login is refused.
//
// # Persist before PUBACK (mochi v2.7.9, server.go processPublish)
//
// mochi calls the OnPublish hooks (server.go:913) on the client's own read
// goroutine (attachClient → cl.Read(s.receivePacket), server.go:476) and
// writes the PUBACK only afterwards (server.go:941-952). The broker calls
// the Handler inside OnPublish, so:
//
//   - Handler returns nil: the message is stored. The hook returns
//     packets.CodeSuccessIgnore; mochi marks the packet ignored
//     (server.go:918-919), writes the PUBACK (server.go:952) and forwards
//     and retains nothing.
//   - Anything else is a refusal and is never acknowledged as stored:
//     a publish outside the device's prefix (MQTT 5 reason 0x87), a payload
//     above MaxPayload (0x97), a Handler error wrapping ErrRefused (0x97) or
//     ErrRejected (0x99), and any other Handler error (transient).
//     MQTT 5 gets a PUBACK (QoS 1) or PUBREC (QoS 2) with that reason
//     code, written by the hook (mochi's own, server.go:920-925, is a
//     PUBACK even for QoS 2) — except for a transient error, which gets
//     DISCONNECT 0x89 and no PUBACK. MQTT 3.1.1 has no
//     negative PUBACK: the hook closes the connection and returns
//     packets.ErrRejectPacket, for which processPublish returns before any
//     acknowledgement (server.go:916-917); a persistent-session device
//     (CleanSession=false) resends the message after reconnecting. Closing
//     is needed because a 3.1.1 client resends an unacknowledged PUBLISH
//     only after it reconnects. The socket is half-closed and drained first
//     so that PUBACKs already written are not destroyed by a RST. (Any
//     other error type from a hook would be a trap: for 3.1.1 mochi falls
//     through and acknowledges and forwards the message.) QoS 0 refusals
//     are dropped.
//   - A device is throttled while it keeps being refused: each refusal in
//     a row doubles its delay (Backoff) — before its next CONNACK after a
//     closed connection, before the refusal PUBACK (or the drop of a QoS 0
//     message) while it stays connected. A stored message ends the run.
//     Counted as Refused and Throttled.
//   - A packet larger than MaxPayload plus 70 KiB (topic and properties) is
//     not read at all (clients.go:456, mochi's MaximumPacketSize): the
//     connection is closed, counted as TooLarge and Refused, and throttled
//     like a refusal.
//
// The Handler therefore sees a message at least once; duplicates carry the
// same msg_id (protocols.md §5.2) for de-duplication downstream. A QoS 2
// message sent again before its PUBREL (in the same session) is answered
// PUBREC 0 and not passed on again; mochi's own answer would be PUBREC 0x91
// (packet identifier in use), a refusal to an MQTT 5 device. A device's
// QoS 1 PUBLISH that uses the packet id of a downlink command still waiting
// for the device's PUBACK does not cancel that command (mochi keeps both
// directions' ids in one table and would drop it; hook.go holdCommand). A gateway
// that keeps undecodable messages as "rejected" records returns nil for
// them; ErrRejected is for messages it will never store.
//
// # Offline and wills
//
// When a device's last connection ends uncleanly (mochi passes a non-nil
// error to OnDisconnect exactly when it also sends the will:
// server.go:476-486), the broker calls Handle(ctx, id, EventOffline, nil).
// Not after a clean DISCONNECT, a session take-over by the same device, the
// broker's own close after a refusal, or Close. A device's own will does
// not pass through OnPublish in mochi (sendLWT, server.go:1516-1552, calls
// only OnWill and publishToSubscribers); the broker handles it in OnWill
// like a publish (before the offline event) and points mochi's copy at a
// topic nobody can subscribe to. A will is handled at once even with an
// MQTT 5 will delay; a will the Handler refuses is lost (counted).
//
// # mochi's panics
//
// mochi decodes a client's packets on that client's goroutine, which the
// package's listener started, and does not recover a panic there; its
// decoders have index bugs (an MQTT 5 SUBSCRIBE without its options byte,
// mochi-mqtt/server#501), and a panic would end the whole gateway. The
// listener recovers it: that connection is closed, logged at ERROR and
// counted (Stats.DecodePanics), and what mochi would have done after a
// failed read is done (the will, the offline event).
//
// # TLS and logs
//
// With TLSCertFile and TLSKeyFile the TLS certificate is re-read when the
// files' modification time changes (checked at each handshake); a broken
// renewal keeps the last good certificate. A plain listener on anything but
// loopback is logged as a WARN at Start: passwords cross the LAN in clear.
//
// Nothing the broker logs carries a password or a payload: mochi logs whole
// packets (a second CONNECT with its password at WARN, server.go
// receivePacket); its logger is wrapped so that packets become their type.
// Repeated warnings (failed logins, refusals, drops) are logged once per
// LogEvery interval and kind (message and device), with one summary line
// counting the rest; the usernames of failed logins are not logged (a
// device may have its password in that field).
//
// # Limits
//
// mochi's default inflight, receive-maximum and write-queue limits drop
// messages in bursts; they are raised. Each client runs on its own
// goroutine, so a Handler that blocks stalls only that device; Close
// cancels the Handler's context and waits for every client goroutine.
// Sessions of disconnected persistent clients expire after 7 days.
//
// The listeners also fix two shutdown flaws of mochi's own: Close drops
// sockets that never logged in, which mochi's Close would otherwise wait
// for forever; and the accept loop counts each connection in mochi's
// ClientsWg before starting its goroutine, which mochi's own listeners do
// not (a WaitGroup race with Close).
package fieldbroker
