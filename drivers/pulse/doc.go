// Package pulse reads digital inputs on GPIO: pulse-output meters (water,
// energy), traffic loops, door/tamper contacts, flood sensors and plain
// contacts (protocols.md §3.4). A Device implements drivers.Source.
//
// # Points
//
//   - Counter: every Interval a Telemetry reading with count (Int, the
//     cumulative number of debounced rising edges: never backwards, never
//     back to zero) and, with PerPulse and Quantity, the scaled quantity
//     Start + count × PerPulse as an exact decimal (10 L per pulse:
//     PerPulse 0.01 → flow_m3; 1000 imp/kWh: PerPulse 0.001 → energy_kwh).
//   - Traffic: every Interval a Telemetry reading with vehicles (rising
//     edges in the interval), interval_s (its length, exact seconds) and
//     the cumulative count. A reading that the gateway could not queue
//     leaves its interval open: the next reading covers both.
//   - Door (door or tamper contact) and Flood: on every debounced change,
//     and once at start, an Alarm reading with state (Bool, true = open /
//     water) and event door_open/door_closed or flood/flood_cleared.
//   - Contact: the same as an Event reading with state only.
//   - Door, flood and contact with a non-zero Interval also report state
//     as Telemetry every Interval.
//
// Invert makes an active-low input (a reed switch to ground with a pull-up)
// count and report as active-high. Reading times are the pin's edge
// timestamps (the gateway clock; DeviceTime false).
//
// # Debounce
//
// From edge timestamps, never from sleeps ("lockout with settle"): an edge
// that changes the level is accepted at its timestamp if at least Debounce
// has passed since the previous accepted change; edges within Debounce of
// an accepted change are bounce; if at the end of that lockout the line
// sits at the other level, that is accepted then. So a transition counts
// once when its bounce is shorter than Debounce, and pulses are counted
// exactly when bounce < Debounce ≤ the shortest high or low time. A spike
// shorter than Debounce counts as a pulse: industrial DIs filter those in
// hardware. Reed contacts want 20-50 ms (DefaultDebounce 20 ms allows up to
// 25 Hz); a 200 Hz square wave with 2 ms bounce needs 2 ms < Debounce ≤
// 2.5 ms (the tests use 2.25 ms).
//
// # Durability
//
// A counter or traffic loop keeps its count in a CounterStore. Run loads
// it at start and continues from it. Before each reading it saves the
// count (FileStore: write, fsync, rename, fsync the directory) and emits
// only if that succeeded; it saves again when ctx ends. So after a crash
// or kill -9:
//   - every count ever reported is ≤ the stored count: the counter
//     continues from at least the last reported value and never goes
//     backwards;
//   - what is lost is exactly the pulses accepted after the last save
//     (at most one Interval's worth, plus any the kernel buffered but the
//     process had not read), and none of those had been reported;
//   - the only pulses counted twice would need a save to be durable and
//     then undone, which the rename-over-fsync'ed-file protocol prevents.
//
// Start and PerPulse are configuration: change them together with the
// meter, not under a running count.
//
// # Health
//
// Device.Health tells whether Run is reading the pin, the pin's error
// (asked of a pin that recovers from line errors by itself, such as
// hardware/gpio.Input, through PinHealth: its NextEdge hides them), the
// last failed count save, and the readings queued and not queued. The
// gateway reports a device whose pin is away as down.
package pulse
