// Package modbussim is a Modbus RTU slave simulator with fault injection: the
// field side of the gateway's Modbus driver, written independently of it
// from the protocol texts (MODBUS Application Protocol V1.1b3, MODBUS over
// Serial Line V1.02; summarised in shared/protocols.md §4). It must never
// import drivers/...
//
// A Unit is one slave id with sparse tables: only the registers, coils and
// discrete inputs that were set exist, so a request touching any other
// address gets exception 02, like a device with a fixed register map.
// A Bus is several units on one multi-drop line; Bus.Serve reads requests
// from a hardware.Port (a serialsim PTY for the gateway to open) and
//
//   - answers only its own unit ids and ignores frames for others;
//   - applies broadcast writes (unit 0, FC 5/6/15/16) to every unit and
//     never answers a broadcast;
//   - drops frames with a bad CRC without a reply, one byte at a time, so
//     the stream resyncs on the next good frame after noise;
//   - implements FC 1, 2, 3, 4, 5, 6, 15 and 16 with the spec's quantity
//     limits (2000/2000/125/125 read, 1968/123 write), checked in the spec's
//     order: function (01), quantity and byte count (03), address (02);
//     every other function code gets exception 01.
//
// Frames are delimited by their header, not by silence (a PTY has no line
// timing): FC 1-6 requests are 8 bytes, FC 15/16 are 7 + byte count + 2,
// and any other function code ends at the shortest prefix with a good
// CRC. Bytes that cannot start a frame, and a cut-off frame once the line
// has been quiet for 20 ms, are dropped.
//
// Faults (Unit.SetFault): Silent (no reply; broadcasts not applied),
// BadCRC (reply with a broken CRC), Exception(code) (any exception code,
// writes not applied), Slow(d) (reply d late); Fault.Times(n) limits a
// fault to the next n requests. Bus.WireTime delays every reply by the
// request's and reply's wire time at the bus's mode plus a turnaround, so
// the gateway's line timing can be measured on a PTY. Unit.Animate makes
// values change before each reply.
//
// Interop is checked against Debian's mbpoll (libmodbus); the golden
// exchanges in testdata/frames.txt are the specification's worked
// examples and public frames, with their sources.
package modbussim
