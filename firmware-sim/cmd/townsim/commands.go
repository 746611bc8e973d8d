package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/townlink/townlink/firmware-sim/modbussim"
)

// ErrCommand reports a command or -faults entry townsim cannot follow.
var ErrCommand = errors.New("townsim: bad command")

const commandHelp = `Commands (one per line on stdin; each answers "ok ..." or "error: ..."):
  fault UNIT FAULT            make a device misbehave; FAULT is none, silent,
                              badcrc, exception:CODE (e.g. exception:4) or
                              slow:DURATION (e.g. slow:2s), optionally *N for
                              only the next N requests (silent*3)
  set UNIT TABLE ADDR V...    write raw 16-bit values (-32768..65535; 0/1 for
                              coil and discrete) and stop animating those points
  resume UNIT                 animate every point of the unit again
  stats                       requests, replies and faults per unit
  list                        the register map
  help                        this text
` + gridHelp + `UNIT is a Modbus unit id (2), or LINE:ID (RS485-1:2) when ids repeat across
lines; TABLE is coil, discrete, input or holding.
`

// findUnit resolves "2" or "RS485-1:2".
func findUnit(lines []*simLine, ref string) (*simLine, *modbusSim, error) {
	lineName, idText, qualified := strings.Cut(ref, ":")
	if !qualified {
		idText, lineName = lineName, ""
	}
	id, err := strconv.ParseUint(idText, 10, 8)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: unit %q (want an id like 2 or LINE:2)", ErrCommand, ref)
	}
	var foundLine *simLine
	var found *modbusSim
	for _, l := range lines {
		if lineName != "" && l.Name != lineName {
			continue
		}
		if m := l.units[byte(id)]; m != nil {
			if found != nil {
				return nil, nil, fmt.Errorf("%w: unit %d is on %s and %s: say which, e.g. %s:%d", ErrCommand, id, foundLine.Name, l.Name, l.Name, id)
			}
			foundLine, found = l, m
		}
	}
	if found == nil {
		return nil, nil, fmt.Errorf("%w: no unit %q in this scenario", ErrCommand, ref)
	}
	return foundLine, found, nil
}

// applyFaults reads the -faults flag: UNIT=FAULT[,UNIT=FAULT…].
func applyFaults(lines []*simLine, spec string) error {
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		ref, f, ok := strings.Cut(item, "=")
		if !ok {
			return fmt.Errorf("%w: -faults entry %q (want UNIT=FAULT, e.g. 2=silent)", ErrCommand, item)
		}
		if _, err := command(lines, "fault "+ref+" "+f); err != nil {
			return fmt.Errorf("-faults %q: %w", item, err)
		}
	}
	return nil
}

// command runs one command line and returns its answer.
func command(lines []*simLine, text string) (string, error) {
	f := strings.Fields(text)
	if len(f) == 0 {
		return "", nil
	}
	switch f[0] {
	case "help", "?":
		return commandHelp, nil
	case "fault":
		if len(f) != 3 {
			return "", fmt.Errorf("%w: want fault UNIT FAULT, e.g. fault 2 silent", ErrCommand)
		}
		_, m, err := findUnit(lines, f[1])
		if err != nil {
			return "", err
		}
		flt, err := modbussim.ParseFault(f[2])
		if err != nil {
			return "", err
		}
		m.unit.SetFault(flt)
		return fmt.Sprintf("unit %d (%s) fault %v", m.dev.Unit, m.dev.Name, flt), nil
	case "set":
		if len(f) < 5 {
			return "", fmt.Errorf("%w: want set UNIT TABLE ADDR VALUE..., e.g. set 1 holding 0 1234", ErrCommand)
		}
		_, m, err := findUnit(lines, f[1])
		if err != nil {
			return "", err
		}
		t, err := modbussim.ParseTable(f[2])
		if err != nil {
			return "", err
		}
		addr, err := strconv.ParseUint(f[3], 0, 16)
		if err != nil {
			return "", fmt.Errorf("%w: address %q (want 0..65535)", ErrCommand, f[3])
		}
		var vals []uint16
		for _, s := range f[4:] {
			v, err := strconv.ParseInt(s, 0, 32)
			bits := t == modbussim.Coils || t == modbussim.DiscreteInputs
			if err != nil || v < -32768 || v > 65535 || (bits && v != 0 && v != 1) {
				return "", fmt.Errorf("%w: value %q (want -32768..65535, or 0/1 for %v)", ErrCommand, s, t)
			}
			vals = append(vals, uint16(v))
		}
		m.hold(t, uint16(addr), len(vals))
		if err := m.unit.Set(t, uint16(addr), vals...); err != nil {
			return "", err
		}
		return fmt.Sprintf("unit %d %v %d = %v (held until resume %d)", m.dev.Unit, t, addr, vals, m.dev.Unit), nil
	case "resume":
		if len(f) != 2 {
			return "", fmt.Errorf("%w: want resume UNIT", ErrCommand)
		}
		_, m, err := findUnit(lines, f[1])
		if err != nil {
			return "", err
		}
		m.resume()
		return fmt.Sprintf("unit %d animated again", m.dev.Unit), nil
	case "stats":
		var b strings.Builder
		for _, l := range lines {
			if l.bus == nil {
				continue
			}
			s := l.bus.Stats()
			fmt.Fprintf(&b, "line %s frames %d broadcasts %d ignored %d dropped-bytes %d\n", l.Name, s.Frames, s.Broadcasts, s.Ignored, s.Dropped)
			ids := make([]int, 0, len(s.Units))
			for id := range s.Units {
				ids = append(ids, int(id))
			}
			sort.Ints(ids)
			for _, id := range ids {
				us := s.Units[byte(id)]
				fmt.Fprintf(&b, "  unit %d requests %d replies %d exceptions %d unanswered %d fault %v\n",
					id, us.Requests, us.Replies, us.Exceptions, us.Suppressed, l.units[byte(id)].unit.Fault())
			}
		}
		return strings.TrimSuffix(b.String(), "\n"), nil
	case "list":
		var b strings.Builder
		sc := Scenario{}
		for _, l := range lines {
			sc.Lines = append(sc.Lines, l.Line)
		}
		if err := sc.listPoints(&b); err != nil {
			return "", err
		}
		return strings.TrimSuffix(b.String(), "\n"), nil
	}
	if out, ok, err := gridCommand(lines, f); ok { // grid.go
		return out, err
	}
	return "", fmt.Errorf("%w %q (try help)", ErrCommand, f[0])
}

// answer prints a command's result the way the command loop does.
func answer(w io.Writer, out string, err error) {
	if err != nil {
		fmt.Fprintf(w, "error: %v\n", err)
		return
	}
	if out == "" {
		return
	}
	fmt.Fprintf(w, "ok %s\n", strings.TrimSuffix(out, "\n"))
}
