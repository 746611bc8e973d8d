package scan

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/townlink/townlink/hardware"
)

// Attempt is one edition looked for at one serial setting.
type Attempt struct {
	Edition Edition
	Mode    hardware.Mode
}

// Plan is the attempts of a scan, in order. Line opens the port once for
// each run of attempts with the same setting.
type Plan []Attempt

var (
	even = hardware.ParityEven
	none = hardware.ParityNone
)

// usual is each edition's usual serial settings, most common first
// (protocols.md: DL/T 645 2400 8E1, also 1200, 4800, 9600; CJ/T 188 2400
// 8E1; Modbus 9600 8N1, also 19200, 4800, 38400, 115200 and even parity).
func usual(e Edition) []hardware.Mode {
	m := func(baud int, p hardware.Parity) hardware.Mode { return hardware.Mode{Baud: baud, Parity: p} }
	switch e {
	case DLT645v2007:
		return []hardware.Mode{m(2400, even), m(1200, even), m(4800, even), m(9600, even)}
	case DLT645v1997:
		return []hardware.Mode{m(2400, even), m(1200, even), m(4800, even), m(9600, even)}
	case CJT188v2004:
		return []hardware.Mode{m(2400, even)}
	}
	var ms []hardware.Mode
	for _, b := range []int{9600, 19200, 4800, 38400, 115200} {
		ms = append(ms, m(b, none), m(b, even))
	}
	return ms
}

// AutoPlan tries each edition of protocols at its usual settings (nil
// protocols: all), in rounds: every edition's most common setting first,
// then every edition's second, and so on, so each edition keeps its own
// order; within a round, attempts at the same setting are adjacent (the
// port is opened once for them).
func AutoPlan(protocols []Protocol) Plan {
	es := editions(protocols)
	var plan Plan
	for round := 0; ; round++ {
		var r Plan
		for _, e := range es {
			if ms := usual(e); round < len(ms) {
				r = append(r, Attempt{Edition: e, Mode: ms[round]})
			}
		}
		if len(r) == 0 {
			return plan
		}
		var modes []hardware.Mode
		for _, a := range r {
			if !slices.Contains(modes, a.Mode) {
				modes = append(modes, a.Mode)
			}
		}
		for _, m := range modes {
			for _, a := range r {
				if a.Mode == m {
					plan = append(plan, a)
				}
			}
		}
	}
}

// FixedPlan looks for each edition at one setting: mode as it is when
// framed, else at mode's rate with the edition's usual parity (DL/T 645
// and CJ/T 188 even; Modbus none, then even).
func FixedPlan(mode hardware.Mode, framed bool, protocols []Protocol) Plan {
	var plan Plan
	for _, e := range editions(protocols) {
		if framed {
			plan = append(plan, Attempt{Edition: e, Mode: mode})
			continue
		}
		ps := []hardware.Parity{even}
		if e == ModbusRTU {
			ps = []hardware.Parity{none, even}
		}
		for _, p := range ps {
			plan = append(plan, Attempt{Edition: e, Mode: hardware.Mode{Baud: mode.Baud, Parity: p}})
		}
	}
	slices.SortStableFunc(plan, func(a, b Attempt) int { return int(a.Mode.Parity) - int(b.Mode.Parity) })
	return plan
}

// ErrSetting: --baud is not auto, a rate, or a rate with framing.
var ErrSetting = errors.New("scan: bad serial setting")

// ParseSetting reads --baud: "auto" (auto true: use AutoPlan), a rate
// ("9600": framed false, each protocol's usual parity) or a rate with
// framing ("9600-8N1", "2400 8E1", "19200,8O2": framed true).
func ParseSetting(s string) (mode hardware.Mode, framed, auto bool, err error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "auto") {
		return hardware.Mode{}, false, true, nil
	}
	rate, framing, _ := strings.Cut(strings.NewReplacer(",", " ", "-", " ").Replace(s), " ")
	baud, err := strconv.Atoi(rate)
	if err != nil {
		return hardware.Mode{}, false, false, fmt.Errorf("%w: %q (want auto, a rate such as 9600, or 9600-8N1)", ErrSetting, s)
	}
	mode = hardware.Mode{Baud: baud}
	if framing = strings.TrimSpace(framing); framing != "" {
		if len(framing) != 3 || framing[0] < '5' || framing[0] > '8' || (framing[2] != '1' && framing[2] != '2') {
			return hardware.Mode{}, false, false, fmt.Errorf("%w: framing %q (want e.g. 8N1 or 8E1)", ErrSetting, framing)
		}
		p, perr := hardware.ParseParity(framing[1:2])
		if perr != nil {
			return hardware.Mode{}, false, false, fmt.Errorf("%w: framing %q: %w", ErrSetting, framing, perr)
		}
		mode.DataBits, mode.Parity, mode.StopBits = int(framing[0]-'0'), p, int(framing[2]-'0')
		framed = true
	}
	if err := mode.Validate(); err != nil {
		return hardware.Mode{}, false, false, fmt.Errorf("%w: %w", ErrSetting, err)
	}
	return mode, framed, false, nil
}

// ErrUnits: --units is not a list of Modbus units.
var ErrUnits = errors.New("scan: bad unit list")

// ParseUnits reads a list of Modbus units such as "1-247" or "1,5,10-20",
// in order, each once.
func ParseUnits(s string) ([]byte, error) {
	var us []byte
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err1 != nil || err2 != nil || a < 1 || b > 247 || a > b {
			return nil, fmt.Errorf("%w: %q (want units 1..247 such as 1-247 or 1,5,10-20)", ErrUnits, part)
		}
		for u := a; u <= b; u++ {
			if seen[u] {
				return nil, fmt.Errorf("%w: unit %d listed twice", ErrUnits, u)
			}
			seen[u] = true
			us = append(us, byte(u))
		}
	}
	return us, nil
}
