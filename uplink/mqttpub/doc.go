// Package mqttpub is the gateway's uplink publisher: an MQTT 3.1.1 client
// (eclipse/paho.mqtt.golang v1.5.1) that publishes at QoS 1 and returns only
// after the broker's PUBACK, implementing uplink.Publisher.
//
// Connection handling is ours, not paho's: paho's auto-reconnect and connect
// retry are off, and Start runs one goroutine that connects to the configured
// brokers in turn (failover), with exponential backoff and jitter seeded from
// the client id so that hundreds of gateways do not reconnect in step. A new
// paho client is built for every connection (paho documents that reusing a
// client after Disconnect can panic). A broker that is unreachable at start
// is not an error: Publish returns ErrNotConnected promptly and the caller
// keeps its data queued. Subscriptions are remembered and renewed after every
// reconnect; the last will (the retained offline status) is registered on
// every connection.
//
// Paho's own store is not a durable outbox and publishes can reorder after a
// reconnect: durability and ordering by seq are the queue's and the
// platform's business (see uplink-contract.md).
//
// Paho logs through package globals (mqtt.ERROR, WARN, ...); they print
// nothing by default. InstallPahoLogger is the one place that changes them.
package mqttpub
