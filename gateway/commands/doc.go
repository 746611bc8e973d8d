// Package commands runs the platform's commands (the cmd stream) and
// answers each one on cmd-result, through the durable queue like any other
// stream.
//
// Every command whose id can be read gets exactly one answer, whatever
// becomes of it (wire.Status*): done, failed, refused, expired, malformed or
// overflow. Answers are remembered by id (Seen, in the store, across
// restarts), so a QoS 1 redelivery or a persistent-session replay of a
// command already answered gets the same answer again and is never run
// twice. An id whose command was started but whose answer was not stored
// (the gateway stopped meanwhile) is answered failed, "outcome unknown",
// never run again.
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
