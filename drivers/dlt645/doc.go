// Package dlt645 speaks DL/T 645 to electricity meters: the 2007 edition
// (多功能电能表通信协议, DL/T 645-2007) and the older 1997 edition. It has a
// frame codec (Encode, Decode, Split), a data-identifier catalogue mapped
// to the platform's power point names (Items, Lookup), and a Meter that
// implements drivers.Poller, plus ReadAddress, the broadcast TimeSync and a
// Probe for technicians' tools.
//
// # Protocol
//
// A frame is
//
//	[FE…] 68 A0..A5 68 C L DATA CS 16
//
// with the address as 12 BCD digits low byte first (AA bytes are the
// wildcard, 999999999999 the broadcast address), C the control code (D7
// reply, D6 abnormal, D5 follow-up, D4..D0 function), every DATA byte
// +0x33 on the wire, and CS the sum from the first 68 to the last DATA
// byte. Values inside DATA are little-endian packed BCD; signed items
// (current, power, power factor) carry the sign in bit 7 of the most
// significant byte. A value of all FF bytes means the meter has no such
// quantity (e.g. phases B and C of a single-phase meter): the point is left
// out of the reading, never reported as zero. Every quantity is an exact
// decimal (drivers.Dec), never a float.
//
// 2007 (DL/T 645-2007 §7): read 0x11 with a 4-byte DI, reply 0x91, or 0xB1
// when follow-up frames are due (read them with 0x12 + DI + SEQ until
// 0x92), abnormal reply 0xD1 with an error byte (AbnormalError). Read
// address 0x13 with the wildcard address. Broadcast time sync 0x08.
//
// 1997 (DL/T 645-1997): same frame, 2-byte DI, read 0x01, reply 0x81 /
// 0xA1 (follow-up via 0x02) / 0xC1. No read-address command: ReadAddress
// reads C032 through the wildcard address. No frequency item.
//
// Marked [unsure] in the project's protocol notes and implemented as
// written there: the 1997 error-byte bits, the 1997 B650 power-factor
// format (read as signed X.XXX) and the 1997 B630 power (read unsigned).
//
// # Wiring
//
// RS-485, half duplex, one master. 2007 meters default to 2400 bit/s 8E1,
// 1997 meters to 1200 bit/s 8E1 (even parity matters: a port at 8N1 reads
// garbage). Requests start with 4 FE wake-up bytes (Config.Preamble);
// replies may carry 0 to 4 FE, noise, or the adapter's echo of the
// request, all of which the reader skips. Meters answer within 20-500 ms;
// the default timeout is 1.5 s with 2 retries, and the line keeps 20 ms of
// silence before every request (Config.Gap, declared by Meter.FrameGap and
// kept by the line's owner, not by the driver). Meter clocks keep local
// time: Config.Location says which zone. Carrier or 4G-DTU paths need timeouts of
// 3-10 s. Keep one request in flight per bus: the gateway's line owner
// polls its meters in turn.
package dlt645
