package fieldbroker

import "sync/atomic"

const (
	cConnects = iota
	cAuthFailures
	cACLDenied
	cTooLarge
	cMalformed
	cHandlerErrors
	cAccepted
	cOffline
	nCounters
)

type counters [nCounters]atomic.Uint64

func (c *counters) snapshot() Counters {
	return Counters{
		Connects:      c[cConnects].Load(),
		AuthFailures:  c[cAuthFailures].Load(),
		ACLDenied:     c[cACLDenied].Load(),
		TooLarge:      c[cTooLarge].Load(),
		Malformed:     c[cMalformed].Load(),
		HandlerErrors: c[cHandlerErrors].Load(),
		Accepted:      c[cAccepted].Load(),
		Offline:       c[cOffline].Load(),
	}
}

// Counters count events since Start.
type Counters struct {
	Connects      uint64 // logins accepted
	AuthFailures  uint64 // CONNECTs refused: unknown user, wrong password, client id held by another device
	ACLDenied     uint64 // publishes outside field/{own-id}/{event}, subscriptions other than field/{own-id}/cmd, wills outside the prefix
	TooLarge      uint64 // publishes (and wills) above MaxPayload, and packets mochi refused to read
	Malformed     uint64 // messages the Handler rejected with ErrRejected (acknowledged, dropped)
	HandlerErrors uint64 // transient Handler failures: not acknowledged, the device resends
	Accepted      uint64 // messages (publishes and wills) the Handler accepted
	Offline       uint64 // offline events passed to the Handler
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
func (b *Broker) count(d *device, i int) {
	b.total[i].Add(1)
	if d != nil {
		d.c[i].Add(1)
	}
}
