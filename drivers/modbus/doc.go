// Package modbus is a Modbus master: a pure codec (CRC-16/MODBUS, requests
// and replies for function codes 1, 2, 3, 4, 5, 6, 15 and 16, exception
// replies), two transports (RTU on a hardware.Port, TCP with MBAP framing on
// a net.Conn) behind the small Transport interface, and Device, a
// register-mapped device that implements drivers.Poller.
//
// # Standards
//
//   - MODBUS Application Protocol Specification V1.1b3 (modbus.org, 2012):
//     function codes §6, exception codes §7, quantity limits (2000 bits,
//     125 registers read; 1968 coils, 123 registers written).
//   - MODBUS over Serial Line Specification and Implementation Guide V1.02
//     (2006): RTU framing §2.5.1, CRC §6.2.2, broadcast §2.1, t1.5/t3.5
//     timing §2.5.1.1.
//   - MODBUS Messaging on TCP/IP Implementation Guide V1.0b (2006): MBAP
//     header §3.1.3.
//
// # Framing
//
// RTU: ADDR(1) FC(1) DATA CRC(2, low byte first). On a wire a frame ends
// after 3.5 character times of silence, but a PTY or a USB adapter hides
// line timing, so SplitRTU takes the frame length from the header
// instead: exception 5 bytes, FC 1-4 3+bytecount+2, FC 5/6/15/16 8. A reply
// is accepted only if its CRC, unit id, function code and byte count all
// match the request; a reply from another unit is ErrWrongUnit. Unit 0
// broadcasts a write: no reply comes, and the transport waits a turnaround
// delay (100 ms) before the next request. Inter-frame gaps (t3.5) between
// requests are the line owner's job; the transport flushes stale input
// before each request.
//
// TCP: TID(2) PID(2)=0 LEN(2) UNIT(1) PDU, no CRC, port 502. Replies are
// matched by transaction id. "RTU over TCP" (RTU frames with CRC in a TCP
// stream, common in 4G DTUs) can use NewRTU on a hardware.Port that wraps
// the connection.
//
// # Addresses
//
// Point addresses are protocol addresses, counted from 0. Vendor manuals
// often print "register 40001" (holding) or "30001" (input): strip the
// 4xxxx/3xxxx prefix and subtract 1, so 40001 is Holding 0 and 30010 is
// Input 9. Some manuals already print protocol addresses (often in hex):
// check one known value with a poll before trusting a map.
//
// 32-bit and 64-bit values span consecutive registers in a device-specific
// order (Order: ABCD big-endian, CDAB word-swapped — the most common
// alternative —, BADC, DCBA). 0x4148 0x0000 read as ABCD float32 is 12.5.
//
// # Wiring (RS-485)
//
//   - Two wires plus a common: A/B (also D-/D+, or "-"/"+"; vendors
//     disagree on which letter is which, so if nothing answers, swap A and
//     B first) and signal ground (GND/C) — connect it, ungrounded buses
//     work on the bench and fail in the field.
//   - Daisy-chain the devices; no stars. Terminate both ends of the bus
//     with 120 Ω (only the ends), and bias the line once (pull-up on B,
//     pull-down on A, often a DIP switch on the gateway).
//   - Every device on one line must share baud rate and framing. The spec
//     default is 19200 8E1 (8N2 without parity); in the field 9600 8N1 is
//     most common. Unit ids must be unique on the line (1..247).
//   - Response timeouts of 0.5-1 s are typical (DefaultTimeout is 1 s);
//     slow meters may need more.
package modbus
