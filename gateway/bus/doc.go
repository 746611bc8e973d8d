// Package bus is the line owner: one goroutine per serial line polls that
// line's devices in turn, whatever their protocol. It keeps inter-frame
// gaps, gives each device its own interval, backs a silent device off so it
// cannot stall the others, tracks each device's state (ok, degraded, down)
// and counts per-line figures (transactions, errors by kind, utilisation).
//
// A Line is built by New from a Config, which New checks at once and never
// changes. Its parts are small types with one job each: the schedule (when
// each device is next due, schedule.go), each device's health and back-off
// (health.go), the line's figures (stats.go), the gap-keeping port
// (gapport.go) and jobs run between polls (jobs.go). Time comes from an
// injected Clock, so the line's logic is tested on a fake clock in
// milliseconds; the PTY tests prove the real thing.
//
// Scheduling: each device has its own interval and keeps its phase (a late
// poll does not shift the following ones; a slot that is missed entirely
// is skipped, never made up in a burst). When several devices are due, the
// one due longest goes first; when the next one is already due, the owner
// does not sleep. Interval 0 means "poll continuously": the device is due
// again as soon as it has been polled, and devices with interval 0 take
// turns.
//
// Silence: before every request the owner keeps the line quiet for
// max(InterFrameGap(Mode), Config.Gap, the device's FrameGap) after the
// last byte on the wire, whoever sent it (the end of a request is computed
// from Mode, since a serial port's write returns before its bytes have
// left). A device's FrameGap is what its driver declares
// (drivers.FrameGapper): the one place the silence a protocol needs is
// kept. A job (Do, PollNow) keeps the longest gap of the line's devices.
//
// A silent device: after DownAfter polls in a row without an answer it is
// down. A down device is tried once per back-off window (doubling from
// max(Interval, MinBackoff) up to MaxBackoff, tried at a random point in
// the second half of each window), and such a try is a probe: the owner
// lets at most one request go unanswered in it, whatever the driver's
// retries, so a dead device costs at most one timeout per window. A device
// whose last poll got not one byte back (all its retries unanswered) is
// polled the same way until it answers, so a meter that dies costs its
// retries once, not DownAfter times.
package bus
