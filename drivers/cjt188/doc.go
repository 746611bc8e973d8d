// Package cjt188 speaks CJ/T 188-2004 (户用计量仪表数据传输技术条件) to
// household water meters: a frame codec (Encode, Decode, Split), the 901F
// metering record (ParseMeterData, Volume) and a Meter that implements
// drivers.Poller and reads the meter's address.
//
// # Protocol
//
// A frame is
//
//	[FE…] 68 T A0..A6 C L DATA CS 16
//
// with T the meter type (0x10 cold water … 0x30 gas; 0xAA any), the
// address as 14 BCD digits low byte first (AA×7 is the wildcard), C the
// control code (D7 reply, D6 abnormal, D5..D0 function), DATA without any
// offset (unlike DL/T 645), and CS the sum from 68 to the last DATA byte.
//
// A read is C=0x01 with DATA = DI SER; the 901F reply (C=0x81, L=22) is
// DI SER, current flow (4 BCD bytes XXXXXX.XX, low byte first) and its
// unit, settlement-day flow and its unit, the clock (ss mm hh DD MM YYlo
// YYhi, all FF when the meter has none) and ST (ST0 D1D0 valve: 00 open,
// 01 closed, 11 fault; D2 battery low). Flows become exact decimals in m³
// (unit 0x2C m³ as is, 0x29 litres × 0.001): flow_m3 and settle_flow_m3,
// with valve, battery_low, status_raw (ST0 + 256·ST1, for vendors with
// other bit masks), meter_time and clock_offset_s. Heat-meter records and
// energy units are rejected with ErrUnit rather than misread.
//
// SER is a sequence number the meter echoes. Meter sends a new SER with
// every request (00, 01, …) and discards replies carrying another one:
// they are late answers to earlier requests. Meters send the DI as 90 1F
// or as 1F 90; both are accepted, and Config.DIOrder chooses what is sent.
// Read address is C=0x03, DI 810A, to type AA and the wildcard address.
// An abnormal reply (C | 0x40) is an *AbnormalError with its status byte
// [unsure: the layout DI SER ST is not confirmed by a capture].
//
// # Wiring
//
// Water meters usually sit on M-Bus, powered by the master, behind an
// M-Bus-to-RS-485/232 converter; plain RS-485 also occurs. The common
// default is 2400 bit/s 8E1 (1200 also occurs). The master sends 2-4 FE
// wake-up bytes (Config.Preamble, default 4). Battery meters are slow:
// the default timeout is 2 s with 2 retries and 100 ms before a retry. A
// wildcard read works only with one meter on the bus. The same wires may
// carry EN 13757 (European M-Bus: 68 L L 68 …) meters, which need another
// decoder.
package cjt188
