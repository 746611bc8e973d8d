// Package gpio gives named digital input lines with timestamped edges, on
// top of periph.io/x/conn/v3/gpio levels.
//
// Three layers:
//
//   - Line is one requested input line with both-edge detection: Read,
//     WaitEdge (the next Edge with its timestamp, or a deadline on the
//     line's own clock), Now, Close. Two backends implement it: Open, the
//     Linux GPIO character device through periph.io/x/host/v3/gpioioctl
//     (the only code in the module that imports periph.io/x/host, all in
//     chardev.go), Sim, a simulated line, and OpenRemote, a simulated line
//     served by another process (townsim) on a Unix-domain socket.
//   - Input sits above a Line: it requests the line through an opener,
//     and after a line error closes it, backs off, requests it again and,
//     when the level changed while the line was away, reports that change
//     as an edge at the time the line came back. Its Level and NextEdge
//     methods use only standard types, so drivers/pulse (which may not
//     import this package) can accept an Input through its own small Pin
//     interface.
//   - Sim is a simulated line driven by a test or by firmware-sim: edges
//     with exact timestamps are pushed into a queue and delivered in time
//     order. With SimConfig.Virtual the line's clock is simulated: it
//     jumps to the next edge or to the deadline a reader waits for, so an
//     hour of pulses runs in milliseconds and every timestamp is exact.
//     Without it the clock is the wall clock and an edge is delivered when
//     its time has come (like a kernel event: exact timestamp, delivered
//     a little later).
//
// Sim lives in this package rather than in a …sim sub-package because
// firmware-sim may import hardware/gpio (DESIGN.md's table) and drives the
// same type the demo and the tests use.
//
// Debouncing is not done here: drivers/pulse debounces from the edge
// timestamps.
//
// # Remote simulated lines
//
// A simulator in another process (townsim, through firmware-sim/gpio's
// Server) serves a simulated line on a Unix-domain socket; OpenRemote(path),
// or Open("sim:/path") / Open("unix:/path"), is that line, so a gateway
// config can say pin: "sim:/abs/.demo/gpio/DI1" on a machine without a GPIO
// chip. The protocol is text, one message a line, server to client only
// (inspect it with socat - UNIX-CONNECT:/abs/.demo/gpio/DI1):
//
//	<unix-nanos> <0|1>\n
//
// the time in nanoseconds since 1970-01-01 UTC as 1-19 decimal digits (no
// sign), one space, the level (1: high). Lines are at most MaxRemoteLine
// bytes; a line starting with '#' is a comment and is ignored. The first
// message after connecting is the state: the line's level and the time it
// took that level. Every later message is an edge: it changes the level
// and is not earlier than the edge before it. The server sends an edge
// shortly before its time on its clock (the same machine's wall clock;
// the state line is never ahead of that clock) and the reader delivers it
// when its time has come, so Edge.Time is the simulator's exact
// timestamp; see OpenRemote for an edge that arrives after the reader
// gave out a later time. Anything else is a line error wrapping
// ErrRemote; ParseRemoteEdge and the stream decoder are fuzzed.
//
// # Linux
//
// Open(name) accepts a line name as gpioinfo shows it (e.g. "GPIO17" on a
// Raspberry Pi, or "DI1" where the device tree names the lines) or
// "gpiochipN:offset" (or "/dev/gpiochipN:offset"), which is resolved to
// that line's name. The line is requested as an input with both edges
// through a one-line gpioioctl.LineSet, because only LineSet.WaitForEdge
// tells a rising from a falling edge. periph.io/x/host/v3 v3.8.5 drops the
// kernel's event timestamp (gpio_v2_line_event.timestamp_ns), so on Linux
// Edge.Time is the time the event was read, not the kernel's: accurate to
// the scheduling latency while the reader keeps up, and compressed (later
// than the true time) when events queue in the kernel. Lines the kernel
// does not name cannot be requested through periph's LineSet.
package gpio
