// Package gpio is simulated field wiring for digital inputs: pulse trains
// from water and energy meters with contact bounce, traffic loops, door
// contacts and flood sensors. It produces edges with exact timestamps and
// plays them into the simulated lines of hardware/gpio (gpio.Sim), which
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
// one.
package gpio
