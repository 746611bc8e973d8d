package main

import (
	"fmt"
	"strconv"

	"github.com/townlink/townlink/firmware-sim/cjt188sim"
	"github.com/townlink/townlink/firmware-sim/dlt645sim"
)

// gridHelp documents the meter faults: what the grid and the pipes do to
// the DL/T 645 and CJ/T 188 meters (the early-warning rules' truth).
const gridHelp = `  phase ADDR PHASE lose|restore  a DL/T 645 meter loses (or gets back) phase a, b or c
  outage LINE on|off          every DL/T 645 meter on LINE loses (gets back) all phases
  leak ADDR LPERH             a CJ/T 188 meter's total rises LPERH litres an hour
                              (a leak behind it; leak ADDR 0 stops it)
  silent ADDR on|off          a DL/T 645 or CJ/T 188 meter stops (resumes) answering
ADDR is a meter address (202611300002, 20261130000101).
`

func findMeter(lines []*simLine, addr string) (*dlt645sim.Meter, *cjt188sim.Meter, error) {
	for _, l := range lines {
		if m := l.meters[addr]; m != nil {
			return m, nil, nil
		}
		if w := l.waters[addr]; w != nil {
			return nil, w, nil
		}
	}
	return nil, nil, fmt.Errorf("%w: no meter %q in this scenario (list shows the addresses)", ErrCommand, addr)
}

func onOff(s string) (bool, error) {
	switch s {
	case "on", "lose":
		return true, nil
	case "off", "restore":
		return false, nil
	}
	return false, fmt.Errorf("%w: %q (want on or off, lose or restore)", ErrCommand, s)
}

// gridCommand runs a meter-fault command; ok is false for other words.
func gridCommand(lines []*simLine, f []string) (out string, ok bool, err error) {
	switch f[0] {
	case "phase":
		if len(f) != 4 || len(f[2]) != 1 {
			return "", true, fmt.Errorf("%w: want phase ADDR a|b|c lose|restore", ErrCommand)
		}
		m, _, err := findMeter(lines, f[1])
		if err == nil && m == nil {
			err = fmt.Errorf("%w: %s is a water meter", ErrCommand, f[1])
		}
		if err != nil {
			return "", true, err
		}
		lose, err := onOff(f[3])
		if err != nil {
			return "", true, err
		}
		if lose {
			err = m.LosePhase(f[2][0])
		} else {
			err = m.RestorePhase(f[2][0])
		}
		return fmt.Sprintf("meter %s phase %s %s", f[1], f[2], f[3]), true, err
	case "outage":
		if len(f) != 3 {
			return "", true, fmt.Errorf("%w: want outage LINE on|off", ErrCommand)
		}
		on, err := onOff(f[2])
		if err != nil {
			return "", true, err
		}
		n := 0
		for _, l := range lines {
			if l.Name != f[1] {
				continue
			}
			for _, m := range l.meters {
				if on {
					m.PowerCut()
				} else {
					m.PowerRestore()
				}
				n++
			}
		}
		if n == 0 {
			return "", true, fmt.Errorf("%w: no DL/T 645 meter on line %q", ErrCommand, f[1])
		}
		return fmt.Sprintf("outage on %s %s (%d meters)", f[1], f[2], n), true, nil
	case "leak":
		if len(f) != 3 {
			return "", true, fmt.Errorf("%w: want leak ADDR LPERH", ErrCommand)
		}
		_, w, err := findMeter(lines, f[1])
		if err == nil && w == nil {
			err = fmt.Errorf("%w: %s is an electricity meter", ErrCommand, f[1])
		}
		if err != nil {
			return "", true, err
		}
		lph, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || lph < 0 || lph > 100_000 {
			return "", true, fmt.Errorf("%w: %q litres an hour (want 0..100000)", ErrCommand, f[2])
		}
		w.Leak(lph * 1000)
		return fmt.Sprintf("meter %s leaks %d L/h", f[1], lph), true, nil
	case "silent":
		if len(f) != 3 {
			return "", true, fmt.Errorf("%w: want silent ADDR on|off", ErrCommand)
		}
		m, w, err := findMeter(lines, f[1])
		if err != nil {
			return "", true, err
		}
		on, err := onOff(f[2])
		if err != nil {
			return "", true, err
		}
		switch {
		case m != nil && on:
			m.SetFault(dlt645sim.Silent)
		case m != nil:
			m.SetFault(dlt645sim.None)
		case on:
			w.SetFault(cjt188sim.Silent)
		default:
			w.SetFault(cjt188sim.None)
		}
		return fmt.Sprintf("meter %s silent %s", f[1], f[2]), true, nil
	}
	return "", false, nil
}
