// Package commands runs the platform's commands (the cmd stream) and
// answers each one on cmd-result, through the durable queue like any other
// stream.
//
// Every command whose id can be read gets exactly one answer, whatever
// becomes of it (wire.Status*): done, failed, refused, expired, malformed or
// overflow. The seen table (Seen, in the store) is both the command queue
// and the memory of answers: a command is stored there before the broker
// gets its PUBACK, run from there one at a time, and its answer replaces
// it. So a command acknowledged is never lost to a restart, and a QoS 1
// redelivery or a persistent-session replay of a command already answered
// gets the same answer again and is never run twice. A command the gateway
// stopped in is answered failed, "outcome unknown", by the next start and
// never run again. Overflow means Options.Queue commands were already
// waiting (a flood, not a burst).
//
// Expiry: a command with expires (UTC ms) is answered expired, not run,
// once the gateway clock is at or past it. While the gateway clock is not
// synchronised (clock.Synced false) such a command is refused, not run:
// the gateway cannot tell whether it is stale, and a set days late is
// worse than none. Commands without expires run whatever the clock says
// (time-sync still refuses on an unsynced clock). A command never holds a
// line longer than its deadline: the earlier of its expires and
// DefaultTimeout after it is taken up.
//
// The package sees the rest of the gateway only through small interfaces:
// Device (read now, write an output), Doer (a job on a line owner),
// Results (the cmd-result queue) and Store (the seen table).
package commands
