package fieldbroker

import "sync/atomic"

const (
	cConnects = iota
	cAuthFailures
	cACLDenied
	cTooLarge
	cMalformed
	cHandlerErrors
	cRefused
	cThrottled
	cAccepted
	cBytes
	cOffline
	cPreAuthDropped
	cDecodePanics
	nCounters
)

type counters [nCounters]atomic.Uint64

func (c *counters) snapshot() Counters {
	return Counters{
		Connects:       c[cConnects].Load(),
		AuthFailures:   c[cAuthFailures].Load(),
		ACLDenied:      c[cACLDenied].Load(),
		TooLarge:       c[cTooLarge].Load(),
		Malformed:      c[cMalformed].Load(),
		HandlerErrors:  c[cHandlerErrors].Load(),
		Refused:        c[cRefused].Load(),
		Throttled:      c[cThrottled].Load(),
		Accepted:       c[cAccepted].Load(),
		Bytes:          c[cBytes].Load(),
		Offline:        c[cOffline].Load(),
		PreAuthDropped: c[cPreAuthDropped].Load(),
		DecodePanics:   c[cDecodePanics].Load(),
	}
}

// Counters count events since Start.
type Counters struct {
	Connects     uint64 // logins accepted
	AuthFailures uint64 // CONNECTs refused for an unknown user or a wrong password (per device: wrong password for its username)
	ACLDenied    uint64 // publishes outside field/{own-id}/{event}, subscriptions other than field/{own-id}/cmd, wills outside the prefix
	TooLarge     uint64 // publishes (and wills) above MaxPayload, and packets too large to read
	// Malformed counts messages the Handler rejected with ErrRejected.
	Malformed uint64
	// HandlerErrors counts transient Handler failures (not ErrRefused or
	// ErrRejected), offline events and wills included.
	HandlerErrors uint64
	// Refused counts messages not stored and never acknowledged as stored,
	// for any reason: ACL, too large, ErrRefused, ErrRejected, other
	// Handler errors.
	Refused uint64
	// Throttled counts CONNACKs and refusals delayed by back-off (failed
	// logins, refused messages).
	Throttled uint64
	Accepted  uint64 // messages (publishes and wills) the Handler stored
	Bytes     uint64 // payload bytes of those
	Offline   uint64 // offline events passed to the Handler
	// PreAuthDropped counts connections closed before login without being
	// handed to mochi: over MaxPending/MaxPendingPerAddr, a CONNECT larger
	// than MaxConnectSize, a first packet that is not a CONNECT, or no
	// CONNECT within the connect timeout. Totals only (no device is known).
	PreAuthDropped uint64
	// DecodePanics counts connections closed because mochi panicked
	// reading one of their packets (listen.go serveConn recovers).
	DecodePanics uint64
}

// Stats is a snapshot of the broker's counters.
type Stats struct {
	Counters     // all devices; AuthFailures includes unknown users
	Online   int // devices connected now
	Devices  map[string]DeviceStats
}

// DeviceStats are one device's counters.
type DeviceStats struct {
	Counters
	Online bool
}

// Stats returns a snapshot of the counters.
func (b *Broker) Stats() Stats {
	online := b.Online()
	s := Stats{Counters: b.total.snapshot(), Devices: make(map[string]DeviceStats, len(b.byID))}
	for id, d := range b.byID {
		s.Devices[id] = DeviceStats{Counters: d.c.snapshot(), Online: online[id]}
		if online[id] {
			s.Online++
		}
	}
	return s
}

// count adds one to counter i, for the device (if any) and in total.
func (b *Broker) count(d *device, i int) { b.add(d, i, 1) }

// add adds n to counter i, for the device (if any) and in total.
func (b *Broker) add(d *device, i int, n uint64) {
	b.total[i].Add(n)
	if d != nil {
		d.c[i].Add(n)
	}
}
