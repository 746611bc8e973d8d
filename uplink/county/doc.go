// Package county is the receiving side of the uplink contract
// (docs/contract.md, docs/county.md): it takes MQTT messages as they arrived
// from the county broker (a JetStream durable consumer, package natsin, or a
// shared MQTT subscription, package mqttin), decodes them by topic identity
// (wire.DecodeTopic: a payload naming another gateway or stream than its
// topic is refused), checks evidence chains and signatures with the keys the
// gateways registered, hands everything to a Store in one commit (which
// removes duplicates by gateway, stream and seq), and only then, in
// "ack: platform" mode, publishes {stream, upto} on each gateway's ack topic
// through a Publisher (natsin.Source sends core NATS messages; with mqttin,
// the MQTT client publishes at QoS 1).
//
// The caller acknowledges the broker's messages only after Handle returned
// nil: a worker that dies before that gets its messages delivered again, to
// itself or another worker, and the store's deduplication makes the second
// delivery harmless.
package county
