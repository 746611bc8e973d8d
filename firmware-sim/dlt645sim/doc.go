// Package dlt645sim is simulated firmware of DL/T 645-2007 and DL/T 645-1997
// electricity meters: a second, independent implementation of the protocol
// (written from shared/protocols.md §1-2, never from drivers/dlt645) that
// the gateway's driver is tested against, with fault injection.
//
// A Meter holds registers (exact decimals, never floats) and a running
// clock; a Line serves any number of meters on one hardware.Port (a PTY's
// master side, or a port of a serialsim.Multidrop shared with other
// protocols), each answering only its own address.
//
// # Frames
//
//	[FE…] 68 A0..A5 68 C L DATA CS 16    DATA bytes +0x33, CS = sum from the first 68
//
// Replies carry 0-4 FE (Meter.SetPreamble, default 4).
//
// # DL/T 645-2007 (C = 0x11 read → 0x91, abnormal 0xD1 + SERR)
//
//	DI           item                                       register name(s)
//	0000 0000    combined active energy, signed             energy_combined_kwh
//	0000 0100-0400, 0000 FF00  combined tariffs 1-4, block  energy_combined_t1_kwh …
//	0001 0000    forward active energy                      energy_kwh
//	0001 0100-0400, 0001 FF00  forward tariffs, block       energy_t1_kwh … energy_t4_kwh
//	0002 0000, 0100-0400, FF00 reverse energy               energy_rev_kwh, energy_rev_t1_kwh …
//	0201 0100-0300, FF00  voltage XXX.X V                   voltage_a_v …
//	0202 0100-0300, FF00  current XXX.XXX A, signed         current_a_a …
//	0203 0000-0300, FF00  active power XX.XXXX kW, signed   power_kw, power_a_kw …
//	0204 …, 0205 …        reactive kvar, apparent kVA       reactive_kvar, apparent_kva (+ _a_ …)
//	0206 0000-0300, FF00  power factor X.XXX, signed        pf, pf_a …
//	0207 0100-0300, FF00  phase angle XXX.X °               angle_a_deg …
//	0280 0001 / 0002 / 0007 / 0008  neutral current, frequency XX.XX Hz, temperature, clock battery
//	                                                        current_n_a, freq_hz, temp_c, battery_v
//	0090 0200    remaining money XXXXXX.XX                  money_cny
//	0400 0101 / 0102 / 010C  date+weekday, time, both       the meter clock
//	0400 0401 / 0402  communication address, meter number   meter_number
//	0400 0501-0507  run status words                        always 0000
//	0600 0001    simulated load profile (follow-up frames, below)
//
// A block (DI1 or DI0 = FF) is the items in order: total first when the
// family has one, then tariffs 1-4 or phases A, B, C. Phases a meter does
// not have (SetPhases) answer FF bytes. Signed items set bit 7 of their
// most significant byte when negative. An unknown DI gets 0xD1 with SERR
// 0x02 (no requested data).
//
// Other codes: 0x13 read address (answered 0x93 + address; with the
// wildcard), 0x08 time sync (never answered, see Meter.Clock), 0x12
// follow-up. 0x14, 0x18-0x1C and 0x03 get an abnormal reply with SERR 0x04
// (not authorised), 0x16 SERR 0x01, 0x17 SERR 0x08; 0x15 and unknown codes
// (including the 1997 0x01) get silence.
//
// Follow-up (DI 0600 0001, the only item longer than one frame): the
// request DATA is DI [+ NN, a BCD record count 1-96, default 12
// [+ mmhhDDMMYY, the first record's time; default: the last NN quarter
// hours up to the meter clock]]. Each record is 17 bytes: mmhhDDMMYY,
// voltage A XXX.X, current A XXX.XXX, power XX.XXXX, forward energy
// XXXXXX.XX (the meter's present values: it is a shape for exercising
// follow-up, not a recorded history, and not the standard's A0A0…E5E5 load
// record layout). Eleven records fit a frame: the 0x11 reply carries the
// first eleven with C = 0xB1 when more follow (0x91 otherwise); the master
// then sends 0x12 with DI + SEQ (1, 2, …) and gets DI + the next records +
// SEQ, C = 0xB2 while more follow and 0x92 on the last. A SEQ out of range
// gets 0xD2 SERR 0x02; asking the same SEQ again repeats the frame.
//
// # DL/T 645-1997 (C = 0x01 read → 0x81, abnormal 0xC1)
//
//	9010-9014, 901F  forward energy, tariffs, block (total + 4)
//	9020-9024, 902F  reverse energy
//	B611-B613, B61F  voltage XXX V (integer: XXX.X rounded half up)
//	B621-B623, B62F  current XX.XX A (rounded)
//	B630-B633, B63F  active power XX.XXXX kW (total, A, B, C)
//	B640             reactive power XX.XX kvar
//	B650-B653, B65F  power factor X.XXX
//	C010, C011       date+weekday (sent WW DD MM YY), time (ss mm hh)
//	C032             meter number
//
// 1997 items have no sign bit: the magnitude is sent. An unknown DI gets
// 0xC1 with error byte 0x02 (wrong DI); write codes get 0x04 (password).
// There is no 0x13: read C032 through the wildcard address instead. A 1997
// meter ignores 2007 codes (0x11) and a 2007 meter ignores 0x01, so a
// master can detect the edition by trying 0x11 and then 0x01.
//
// # Time sync
//
// 0x08 with DATA ss mm hh DD MM YY, usually to 999999999999, is applied by
// every meter it reaches when it moves the meter clock by at most 5
// minutes, like real meters; larger jumps and impossible dates are
// rejected and counted in Stats.SyncRejected. (Real meters often also
// accept one sync a day only; this simulator does not limit that.)
//
// # Faults
//
// Meter.SetFault: Silent, BadChecksum, NoiseBefore, WrongAddress, CutOff,
// Slow(d), Garbage(p), None. See Line for addressing, collisions and the
// wire-time formula.
package dlt645sim
