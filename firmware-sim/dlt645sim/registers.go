package dlt645sim

import (
	"fmt"

	"github.com/townlink/townlink/firmware-sim/internal/rs485"
)

// spec describes one settable register: it is stored as an integer count
// of 10^-scale units (the finest resolution any DI gives it), limited to
// what its DL/T 645-2007 item can carry.
type spec struct {
	scale  int
	maxAbs int64
	signed bool
	phase  byte // 'a', 'b', 'c' for a per-phase register, else 0
}

// phaseGroup is one DI2 family under DI3 = 02 (variables): its per-phase
// items DI1 = 01..03, an optional total DI1 = 00, and the block DI1 = FF.
type phaseGroup struct {
	di2          byte
	prefix, unit string
	size, dec    int
	signed       bool
	total        bool
}

func phaseGroups() []phaseGroup {
	return []phaseGroup{
		{0x01, "voltage", "v", 2, 1, false, false},   // XXX.X V
		{0x02, "current", "a", 3, 3, true, false},    // XXX.XXX A
		{0x03, "power", "kw", 3, 4, true, true},      // XX.XXXX kW
		{0x04, "reactive", "kvar", 3, 4, true, true}, // XX.XXXX kvar
		{0x05, "apparent", "kva", 3, 4, true, true},  // XX.XXXX kVA
		{0x06, "pf", "", 2, 3, true, true},           // X.XXX
		{0x07, "angle", "deg", 2, 1, false, false},   // XXX.X °
	}
}

// name is the register name of phase 'a'..'c', or of the total (phase 0):
// voltage_a_v, current_b_a, power_kw, power_c_kw, pf, pf_a.
func (g phaseGroup) name(phase byte) string {
	s := g.prefix
	if phase != 0 {
		s += "_" + string(phase)
	}
	if g.unit != "" {
		s += "_" + g.unit
	}
	return s
}

func energyName(base string, tariff int) string {
	if tariff == 0 {
		return base + "_kwh"
	}
	return fmt.Sprintf("%s_t%d_kwh", base, tariff)
}

// energyBase names the energy registers of DI2 = 00 (combined), 01
// (forward) and 02 (reverse).
func energyBase(di2 byte) string {
	return [...]string{"energy_combined", "energy", "energy_rev"}[di2]
}

func maxAbs(size int, signed bool) int64 {
	if signed { // bit 7 of the top byte is the sign: top digit 0..7
		return 8*rs485.Pow10(2*size-1) - 1
	}
	return rs485.Pow10(2*size) - 1
}

// registerSpecs lists every register a Meter holds, by name.
func registerSpecs() map[string]spec {
	s := map[string]spec{}
	for di2 := range byte(3) {
		for t := 0; t <= 4; t++ {
			s[energyName(energyBase(di2), t)] = spec{scale: 2, maxAbs: maxAbs(4, di2 == 0), signed: di2 == 0}
		}
	}
	for _, g := range phaseGroups() {
		for _, ph := range []byte{'a', 'b', 'c'} {
			s[g.name(ph)] = spec{scale: g.dec, maxAbs: maxAbs(g.size, g.signed), signed: g.signed, phase: ph}
		}
		if g.total {
			s[g.name(0)] = spec{scale: g.dec, maxAbs: maxAbs(g.size, g.signed), signed: g.signed}
		}
	}
	s["current_n_a"] = spec{scale: 3, maxAbs: maxAbs(3, true), signed: true}
	s["freq_hz"] = spec{scale: 2, maxAbs: maxAbs(2, false)}
	s["temp_c"] = spec{scale: 1, maxAbs: maxAbs(2, true), signed: true}
	s["battery_v"] = spec{scale: 2, maxAbs: maxAbs(2, false)}
	s["money_cny"] = spec{scale: 2, maxAbs: maxAbs(4, false)}
	return s
}

// defaults are the values of a new meter besides zeros.
func defaults() map[string]string {
	return map[string]string{
		"voltage_a_v": "220.0", "voltage_b_v": "220.0", "voltage_c_v": "220.0",
		"pf": "1.000", "pf_a": "1.000", "pf_b": "1.000", "pf_c": "1.000",
		"angle_b_deg": "120.0", "angle_c_deg": "240.0",
		"freq_hz": "50.00", "temp_c": "25.0", "battery_v": "3.60",
	}
}

type fieldKind uint8

const (
	fNum      fieldKind = iota
	fDate               // YYMMDDWW, sent WW DD MM YY
	fTime               // hhmmss, sent ss mm hh
	fDateTime           // YYMMDDWWhhmmss, sent ss mm hh WW DD MM YY
	fAddr               // communication address, 6 bytes
	fMeterNo            // meter number, 6 bytes
	fZero               // a status word this simulator keeps at zero
)

// field is one value inside a reply, in DI order.
type field struct {
	kind   fieldKind
	reg    string
	size   int // bytes
	dec    int // decimals on the wire
	signed bool
	abs    bool // 1997: no sign bit, the magnitude is sent
	wrap   bool // energy registers roll over instead of saturating
}

func energyField(base string, t int, signed bool) field {
	return field{reg: energyName(base, t), size: 4, dec: 2, signed: signed, wrap: true}
}

// fields2007 maps a DL/T 645-2007 DI (DI3 DI2 DI1 DI0 as a number) to the
// values of its reply, nil when the meter has no such item.
func fields2007(di uint32) []field {
	d3, d2, d1, d0 := byte(di>>24), byte(di>>16), byte(di>>8), byte(di)
	switch {
	case d3 == 0x00 && d2 <= 0x02 && d0 == 0x00: // energy: 00 combined, 01 forward, 02 reverse
		base, signed := energyBase(d2), d2 == 0x00
		switch {
		case d1 <= 4:
			return []field{energyField(base, int(d1), signed)}
		case d1 == 0xFF:
			fs := make([]field, 0, 5)
			for t := 0; t <= 4; t++ {
				fs = append(fs, energyField(base, t, signed))
			}
			return fs
		}
	case d3 == 0x02 && d0 == 0x00:
		for _, g := range phaseGroups() {
			if g.di2 != d2 {
				continue
			}
			f := func(ph byte) field {
				return field{reg: g.name(ph), size: g.size, dec: g.dec, signed: g.signed}
			}
			switch {
			case d1 == 0x00 && g.total:
				return []field{f(0)}
			case d1 >= 0x01 && d1 <= 0x03:
				return []field{f('a' + d1 - 1)}
			case d1 == 0xFF:
				var fs []field
				if g.total {
					fs = append(fs, f(0))
				}
				return append(fs, f('a'), f('b'), f('c'))
			}
		}
	}
	switch di {
	case 0x02800001:
		return []field{{reg: "current_n_a", size: 3, dec: 3, signed: true}}
	case 0x02800002:
		return []field{{reg: "freq_hz", size: 2, dec: 2}}
	case 0x02800007:
		return []field{{reg: "temp_c", size: 2, dec: 1, signed: true}}
	case 0x02800008:
		return []field{{reg: "battery_v", size: 2, dec: 2}}
	case 0x00900200:
		return []field{{reg: "money_cny", size: 4, dec: 2}}
	case 0x04000101:
		return []field{{kind: fDate, size: 4}}
	case 0x04000102:
		return []field{{kind: fTime, size: 3}}
	case 0x0400010C:
		return []field{{kind: fDateTime, size: 7}}
	case 0x04000401:
		return []field{{kind: fAddr, size: 6}}
	case 0x04000402:
		return []field{{kind: fMeterNo, size: 6}}
	case 0x04000501, 0x04000502, 0x04000503, 0x04000504, 0x04000505, 0x04000506, 0x04000507:
		return []field{{kind: fZero, size: 2}}
	}
	return nil
}

// fields1997 maps a DL/T 645-1997 DI (DI1 DI0) to the values of its reply.
// 1997 items carry no sign bit: the magnitude is sent.
func fields1997(di uint16) []field {
	hi, lo := byte(di>>8), byte(di)
	block := func(f func(i int) field, from, to int) []field {
		var fs []field
		for i := from; i <= to; i++ {
			fs = append(fs, f(i))
		}
		return fs
	}
	phase := func(i int) byte { return byte('a' + i - 1) }
	var f func(i int) field
	from := 1
	switch hi {
	case 0x90: // energy: 901x forward, 902x reverse; x = 0 total, 1..4 tariffs, F block
		var base string
		switch lo & 0xF0 {
		case 0x10:
			base = "energy"
		case 0x20:
			base = "energy_rev"
		default:
			return nil
		}
		f = func(t int) field { return energyField(base, t, false) }
		switch t := int(lo & 0x0F); {
		case t <= 4:
			return []field{f(t)}
		case t == 0x0F:
			return block(f, 0, 4)
		}
		return nil
	case 0xB6:
		switch lo & 0xF0 {
		case 0x10: // B611..B613 voltage, XXX V
			f = func(i int) field {
				return field{reg: fmt.Sprintf("voltage_%c_v", phase(i)), size: 2, dec: 0, abs: true}
			}
		case 0x20: // B621..B623 current, XX.XX A
			f = func(i int) field {
				return field{reg: fmt.Sprintf("current_%c_a", phase(i)), size: 2, dec: 2, abs: true}
			}
		case 0x30: // B630 total, B631..B633 per phase, XX.XXXX kW
			from = 0
			f = func(i int) field {
				if i == 0 {
					return field{reg: "power_kw", size: 3, dec: 4, abs: true}
				}
				return field{reg: fmt.Sprintf("power_%c_kw", phase(i)), size: 3, dec: 4, abs: true}
			}
		case 0x40: // B640 reactive power total, XX.XX kvar
			if lo == 0x40 {
				return []field{{reg: "reactive_kvar", size: 2, dec: 2, abs: true}}
			}
			return nil
		case 0x50: // B650 total, B651..B653 per phase, X.XXX
			from = 0
			f = func(i int) field {
				if i == 0 {
					return field{reg: "pf", size: 2, dec: 3, abs: true}
				}
				return field{reg: fmt.Sprintf("pf_%c", phase(i)), size: 2, dec: 3, abs: true}
			}
		default:
			return nil
		}
		n := int(lo & 0x0F)
		switch {
		case n >= from && n <= 3:
			return []field{f(n)}
		case n == 0x0F:
			return block(f, from, 3)
		}
	case 0xC0:
		switch lo {
		case 0x10:
			return []field{{kind: fDate, size: 4}}
		case 0x11:
			return []field{{kind: fTime, size: 3}}
		case 0x32:
			return []field{{kind: fMeterNo, size: 6}}
		}
	}
	return nil
}
