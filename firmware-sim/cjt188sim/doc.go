// Package cjt188sim is simulated firmware of CJ/T 188-2004 water (and gas)
// meters: a second, independent implementation of the protocol (written
// from shared/protocols.md §3, never from drivers/cjt188) that the
// gateway's driver is tested against, with fault injection.
//
// A Meter holds the cumulative and settlement-day flow (exact decimals),
// the valve and battery state and a running clock; a Line serves any
// number of meters on one hardware.Port, each answering only its own type
// and address.
//
// # Frames
//
//	[FE…] 68 T A0..A6 C L DATA CS 16    no +0x33; DATA = DI(2) SER(1) …; CS = sum from 68
//
// Replies carry 0-4 FE (Meter.SetPreamble, default 3). The DI may come in
// either byte order (90 1F or 1F 90); the reply uses the request's order,
// and always echoes its SER (except with the OldSER fault).
//
// # Requests answered
//
//	C    DI     reply
//	01   901F   81, L = 0x16: DI SER | CUR(4) U | SETTLE(4) U | TIME(7) | ST0 ST1
//	03   810A   83, L = 3: DI SER (the address is in the header; use T = AA and the wildcard)
//	04   A017   84, L = 5: DI SER ST0 ST1 after DATA 55 (open) / 99 (close);
//	            C4 DI SER ST0 when the valve is faulty or the command byte unknown
//	01   other  C1, L = 4: DI SER ST0 [the abnormal layout is unsure in protocols.md]
//
// CUR and SETTLE are XXXXXX.XX BCD, low byte first, in the unit code U:
// 0x2C m³ (default) or 0x29 L (Meter.SetUnit); flow is held in 0.01 L so
// both are exact, and m³ shows completed hundredths. TIME is ss mm hh DD MM
// YYlo YYhi BCD. ST0: D1 D0 valve (00 open, 01 closed, 11 fault), D2
// battery low; ST1 vendor-defined (Set "st1"). Other codes (write price,
// settlement day, address, standard time…) get no reply.
//
// # Faults
//
// Meter.SetFault: Silent, BadChecksum, NoiseBefore, WrongAddress, CutOff,
// OldSER (the reply echoes the previous request's SER), Slow(d),
// Garbage(p), None. See Line for addressing, collisions and the wire-time
// formula.
package cjt188sim
