// Package pulsesim is simulated field wiring for digital inputs: pulse trains
// from water and energy meters with contact bounce, traffic loops, door
// contacts and flood sensors. It produces edges with exact timestamps and
// plays them into the simulated lines of hardware/gpiosim (gpiosim.Sim), which
// drivers/pulse reads. It never imports drivers: it is the independent
// "other side of the wire".
//
// # Bounce model
//
// A clean transition at time t to level L is followed by k bounces within
// the bounce time B: 2k more edges at distinct times t < b1 < … < b2k ≤ t+B,
// alternating (not L, L, …), so the line ends at L no later than t+B. The
// bounce times are drawn from a PCG generator seeded by Seed: the same
// seed gives the same edges, to the nanosecond.
//
// A Train is a periodic pulse train (rate, high time, bounce, count or
// endless); Toggles is a list of level changes at given offsets (a door
// that opens and closes, a flood sensor that trips and clears). Play
// pushes any edge sequence into a Sim, waiting when the Sim's queue is
// full, so endless trains work on the wall clock as well as on a virtual
// one. Traffic is a loop detector's output: vehicles arriving at random
// (Poisson), one pulse each.
//
// # Across processes
//
// Server serves one line on a Unix-domain socket for another process: the
// gateway opens it with hardware/gpiosim.Dial (pin "sim:/path" in its
// config). Listen binds the socket; Serve plays an edge sequence in real
// time, sending each edge with its exact timestamp when its time has come,
// to every connected client; a client (re)connecting first gets the
// line's current level. The protocol, one text line per message
// ("<unix-nanos> <0|1>"), is described in hardware/gpiosim's doc. townsim
// serves its township's digital inputs this way.
package pulsesim
