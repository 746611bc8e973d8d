// Package scan finds the devices on one serial line: DL/T 645-2007 and
// -1997 meters (wildcard search, collisions resolved), CJ/T 188 meters
// (read address, same search) and Modbus RTU units (probe 1..247). Each
// device found is read once with its driver and turned into the config
// entry that reads it.
//
// Run scans a port that is already open at one serial setting: it is the
// job a running gateway executes on its line owner (bus.Line.Do), best on
// a Leased port, which gives the line back to the owner's polls between
// probes. Line opens the port at each setting of a Plan in turn (--baud
// auto). Poll and NewPoller read a device of the config once (townlink
// read); Config writes the entries to paste; Tap logs frames in hex. Both report progress (probes done and estimated, time
// left) through a callback and stop cleanly when ctx ends, returning what
// they found so far.
package scan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/hardware"
)

// Protocol is a protocol family, as --protocols names it.
type Protocol string

// Protocols.
const (
	DLT645 Protocol = "dlt645" // both editions
	CJT188 Protocol = "cjt188"
	Modbus Protocol = "modbus"
)

// AllProtocols is the default of Options.Protocols.
var AllProtocols = []Protocol{DLT645, CJT188, Modbus}

// Edition is one protocol as found on the wire.
type Edition string

// Editions.
const (
	DLT645v2007 Edition = "DL/T 645-2007"
	DLT645v1997 Edition = "DL/T 645-1997"
	CJT188v2004 Edition = "CJ/T 188-2004"
	ModbusRTU   Edition = "Modbus RTU"
)

// Protocol is the family of the edition.
func (e Edition) Protocol() Protocol {
	switch e {
	case DLT645v2007, DLT645v1997:
		return DLT645
	case CJT188v2004:
		return CJT188
	}
	return Modbus
}

func editions(ps []Protocol) []Edition {
	if len(ps) == 0 {
		ps = AllProtocols
	}
	var es []Edition
	for _, p := range ps {
		switch p {
		case DLT645:
			es = append(es, DLT645v2007, DLT645v1997)
		case CJT188:
			es = append(es, CJT188v2004)
		case Modbus:
			es = append(es, ModbusRTU)
		}
	}
	return es
}

// ErrProtocol: --protocols names an unknown protocol.
var ErrProtocol = errors.New("scan: unknown protocol")

// ParseProtocols reads a comma-separated list such as "dlt645,modbus".
func ParseProtocols(s string) ([]Protocol, error) {
	var ps []Protocol
	for _, f := range strings.Split(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		switch p := Protocol(f); p {
		case DLT645, CJT188, Modbus:
			for _, q := range ps {
				if q == p {
					return nil, fmt.Errorf("%w: %q listed twice", ErrProtocol, f)
				}
			}
			ps = append(ps, p)
		default:
			return nil, fmt.Errorf("%w: %q (want dlt645, cjt188 or modbus, comma-separated)", ErrProtocol, f)
		}
	}
	return ps, nil
}

// Options tunes a scan.
type Options struct {
	// Protocols to look for; nil means all.
	Protocols []Protocol
	// ReplyDelay is how long a device may take before it starts to answer
	// a probe; 0 means each protocol's default (DL/T 645 and CJ/T 188:
	// 500 ms, the standard's bound; Modbus: 100 ms).
	ReplyDelay time.Duration
	// Units are the Modbus units to probe; nil means 1..247.
	Units []byte
	// Line and Port name the line in the config entries: its name and its
	// port as written (a board label or a device path). Line defaults to
	// "RS485-1".
	Line, Port string
	// Logger receives debug records; nil discards them.
	Logger *slog.Logger
}

func (o Options) lineName() string {
	if o.Line == "" {
		return "RS485-1"
	}
	return o.Line
}

// Found is one device that answered.
type Found struct {
	Edition Edition
	Mode    hardware.Mode
	// Device is the config entry that reads it (id, driver, line, address
	// or unit, meter type, Modbus points), defaults applied.
	Device config.Device
	// Exception is the Modbus exception code of the probe's reply (0: a
	// normal reply); an exception still proves the unit is there.
	Exception byte
	// Reading is the first reading, one poll with the driver; ReadErr says
	// what failed when it is empty or partial.
	Reading drivers.Reading
	ReadErr string
	// Note explains why Device cannot be pasted as it is (a heat meter the
	// driver does not read, a Modbus unit without a known register); empty
	// when it can.
	Note string
}

// Address is the meter address, or "unit N" for Modbus.
func (f Found) Address() string {
	if f.Edition == ModbusRTU {
		return fmt.Sprintf("unit %d", f.Device.Unit)
	}
	return f.Device.Address
}

// Progress is what a scan reports after every probe.
type Progress struct {
	Step  string        // what it does now, e.g. "DL/T 645-2007 at 2400 8E1"
	Done  int           // probes sent
	Total int           // probes estimated in all (grows when collisions are refined)
	Left  time.Duration // estimated time left
	Found int           // devices found so far
}

// Run scans p, open at mode, for the editions of o.Protocols and reads
// every device found once. It is the job for a running gateway's line
// owner. On ctx's end it returns what it found so far and ctx.Err();
// problems that did not stop it (garbled replies, failed first readings)
// are joined into the error beside the results.
func Run(ctx context.Context, p hardware.Port, mode hardware.Mode, o Options, progress func(Progress)) ([]Found, error) {
	var plan Plan
	for _, e := range editions(o.Protocols) {
		plan = append(plan, Attempt{Edition: e, Mode: mode})
	}
	r := newRunner(o, plan, progress)
	err := r.runMode(ctx, p, mode, plan)
	return r.found, errors.Join(append(r.problems, err)...)
}

// Opener opens the line at a serial setting. The port is closed after use
// if it is an io.Closer.
type Opener func(hardware.Mode) (hardware.Port, error)

// Line scans the line at every setting of plan in turn, opening it with
// open for each, and stops looking for an edition once it has been found
// at one setting (a line has one setting per protocol). See Run.
func Line(ctx context.Context, open Opener, plan Plan, o Options, progress func(Progress)) ([]Found, error) {
	r := newRunner(o, plan, progress)
	for i := 0; i < len(plan); {
		mode := plan[i].Mode
		j := i
		for j < len(plan) && plan[j].Mode == mode {
			j++
		}
		group := plan[i:j]
		i = j
		if !r.wants(group) {
			continue
		}
		p, err := open(mode)
		if err != nil {
			return r.found, errors.Join(append(r.problems, fmt.Errorf("scan: open at %s: %w", mode, err))...)
		}
		err = r.runMode(ctx, p, mode, group)
		if c, ok := p.(io.Closer); ok {
			if cerr := c.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("scan: close: %w", cerr)
			}
		}
		if err != nil {
			return r.found, errors.Join(append(r.problems, err)...)
		}
	}
	return r.found, errors.Join(r.problems...)
}
