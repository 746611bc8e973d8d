// Package rules is the gateway's early warning (研判预警): rules from the
// config's rules: section watch the readings as they pass the pipeline
// and raise and clear alarms on the alarms stream, in the township, even
// while the county is unreachable.
//
// The Engine is pure: its clock is injected, its state is kept through a
// small Store (a badgerq KV table in the gateway), and its alarms leave
// through an Emitter (the pipeline). In the gateway the pipeline hands
// every queued reading to Feed (pipeline.Observe); Run evaluates them in
// batches every 10 ms, off the ingest path, and ticks once a second for
// what time alone changes (silences, hold times, windows). Observe and
// Tick are the same steps, synchronous, for tests.
//
// # Lifecycle
//
// A rule watches targets: one device (threshold, rate, window, stale,
// expr) or a whole scope (group). A target's raise-condition must hold
// for the rule's hold before the alarm is raised; its clear-condition
// (the limit moved back by the hysteresis) must hold for clear_hold before
// it is cleared. An alarm is a "raised" and a "cleared" record on the
// alarms stream sharing one alarm id, with the points
//
//	event     "raised" | "cleared" | "suppressed"
//	alarm_id  text: <rule>:<target>:<raise time in ms>
//	rule      text, severity int (1 most severe .. 4), scope text, message text
//	since     int, ms: when the raise-condition began to hold
//	point, value, limit   the point that crossed, its value, the limit (when there is one)
//	raised    int, ms (cleared only): when the alarm was raised
//	suppressed int: raises of the rule suppressed since the last one reported
//
// A record is on the device's record (dev = the device) for a device
// target, on the gateway's own (dev = gateway id) for a scope target.
//
// # Durability
//
// Before a raised or cleared record is queued, the alarm is written to the
// Store with that record pending; after the queue has it, the pending mark
// is removed (or, for a cleared, the alarm deleted). A restart re-queues a
// pending record (same alarm id) and keeps every active alarm active, so
// no second "raised" follows a restart and no "cleared" is lost. Only a
// kill in the few milliseconds between the queue's sync and the Store's
// can repeat a record, and then with the same alarm id.
//
// # Rate limit
//
// A rule raises at most Raises alarms per RaisesPer. Beyond, a raise is
// suppressed (no raised, and no cleared for it); the first suppression is
// reported at once as a "suppressed" record, and the next raise carries
// the number suppressed meanwhile.
package rules
