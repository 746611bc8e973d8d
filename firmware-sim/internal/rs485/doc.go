// Package rs485 is what the meter firmware simulators of firmware-sim share
// that has nothing to do with any one protocol: the serve loop of a
// multi-drop line (reading, resynchronising, wire-time emulation,
// collisions, counters), exact fixed-point decimals and packed BCD, the
// reply faults every simulated meter can inject, and a meter clock with
// offset and drift.
//
// The framing stays in each protocol package (firmware-sim/dlt645sim,
// firmware-sim/cjt188sim): a Line is given the protocol's scanner and the
// meters' answers as plain functions. Like the rest of firmware-sim, this
// package never imports drivers/…: the simulators stay an independent
// second implementation of the protocols.
package rs485
