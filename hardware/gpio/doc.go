// Package gpio gives named digital input lines with timestamped edges, on
// top of periph.io/x/conn/v3/gpio levels.
//
// Two layers:
//
//   - Line is one requested input line with both-edge detection: Read,
//     WaitEdge (the next Edge with its timestamp, or a deadline on the
//     line's own clock), Now, Close. Open is the real backend: the Linux
//     GPIO character device through periph.io/x/host/v3/gpioioctl (the
//     only code in the module that imports periph.io/x/host, all in
//     chardev.go). Simulated lines are another package's:
//     hardware/gpiosim (Sim in process, Dial for a line served by townsim
//     on a Unix-domain socket).
//   - Input sits above a Line: it requests the line through an opener,
//     and after a line error closes it, backs off, requests it again and,
//     when the level changed while the line was away, reports that change
//     as an edge at the time the line came back. Its Level and NextEdge
//     methods use only standard types, so drivers/pulse (which may not
//     import this package) can accept an Input through its own small Pin
//     interface.
//
// Open opens real lines only. A gateway that also accepts simulated lines
// (pin: "sim:/path" in its config) chooses in its own wiring: gpiosim.Dial
// for a name gpiosim.SocketPath accepts, Open otherwise.
//
// Debouncing is not done here: drivers/pulse debounces from the edge
// timestamps.
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
