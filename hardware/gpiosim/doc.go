// Package gpiosim is simulated GPIO input lines: hardware/gpio.Line
// implementations for tests, firmware-sim and the demo, kept apart from
// hardware/gpio's real backend so that gpio.Open opens real lines only.
//
// Two kinds:
//
//   - Sim is a simulated line driven in process by a test or by
//     firmware-sim: edges with exact timestamps are pushed into a queue
//     and delivered in time order. With Config.Virtual the line's clock is
//     simulated: it jumps to the next edge or to the deadline a reader
//     waits for, so an hour of pulses runs in milliseconds and every
//     timestamp is exact. Without it the clock is the wall clock and an
//     edge is delivered when its time has come (like a kernel event: exact
//     timestamp, delivered a little later). Sim.Open is a gpio.Opener.
//   - Dial connects to a simulated line served by another process
//     (townsim, through firmware-sim/pulsesim's Server) on a Unix-domain
//     socket. A gateway config names such a line pin: "sim:/abs/path" (or
//     "unix:/abs/path"); SocketPath recognises those names, and the
//     gateway's wiring dials them instead of calling gpio.Open.
//
// Errors wrap hardware/gpio's sentinels (gpio.ErrLine, gpio.ErrClosed,
// gpio.ErrNoLine), so a gpio.Input treats a simulated line like a real
// one; ErrBadEdge and ErrProtocol say what the simulator did wrong.
//
// # Socket protocol
//
// The protocol is text, one message a line, server to client only
// (inspect it with socat - UNIX-CONNECT:/abs/.demo/gpio/DI1):
//
//	<unix-nanos> <0|1>\n
//
// the time in nanoseconds since 1970-01-01 UTC as 1-19 decimal digits (no
// sign), one space, the level (1: high). Lines are at most MaxMessage
// bytes; a line starting with '#' is a comment and is ignored. The first
// message after connecting is the state: the line's level and the time it
// took that level. Every later message is an edge: it changes the level
// and is not earlier than the edge before it. The server sends an edge
// shortly before its time on its clock (the same machine's wall clock;
// the state line is never ahead of that clock) and the reader delivers it
// when its time has come, so Edge.Time is the simulator's exact
// timestamp; see Dial for an edge that arrives after the reader gave out
// a later time. Anything else is a line error wrapping ErrProtocol;
// ParseMessage and the stream decoder are fuzzed.
package gpiosim
