// Package kiosksim is simulated firmware of a service hall's queue system
// (排队叫号机) with evaluation pads (好差评), speaking the gateway's field
// MQTT model (protocols.md §6): an independent second implementation,
// never importing drivers/kiosk.
//
// Run plays the hall on a simulated clock accelerated by Options.Speed:
// Poisson arrivals per service (ticket.issued, with a citizen_ref that is
// the SHA-256 hex of a fake phone number, never an ID number), windows
// that call the longest-waiting ticket they serve (ticket.called),
// service.started after a walk of 10-40 s, exponential service times
// (service.finished with service_s), a rating for RatedShare of them
// (service.rated, 1-5 with the four hall dimensions, reasons when ≤ 2),
// and window.status open at the start and closed at the end. Messages are
// the gw.v1 envelope, JSON, QoS 1, on field/{id}/{event}; the last will
// is device.status {online:false}. Every time on the wire is a whole
// millisecond, and a message's ts equals the event's own time.
//
// Same Seed, same hall. A Journal records every acknowledged message with
// its ticket, service, window and rating, so a test can recompute the
// gateway's metrics on its own.
package kiosksim
