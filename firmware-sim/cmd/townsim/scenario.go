package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/townlink/townlink/firmware-sim/cjt188sim"
	"github.com/townlink/townlink/firmware-sim/dlt645sim"
	"github.com/townlink/townlink/firmware-sim/modbussim"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serialsim"
)

// Scenario is a simulated township: its serial lines and the field
// devices on each. It is plain data; build turns it into running
// simulators.
type Scenario struct {
	Name  string
	Lines []Line
	// Inputs are digital inputs, served on Unix sockets (gpio.go).
	Inputs []Input
}

// Line is one serial line, served on one PTY and linked as DIR/<Name>.
type Line struct {
	Name string        // board label, e.g. RS485-1; also the symlink name
	Mode hardware.Mode // what the gateway should open the line with
	// Modbus RTU units on the line.
	Modbus []ModbusDevice
	// Electricity meters (DL/T 645-2007 or -1997) on the line.
	Power []PowerMeter
	// Water meters (CJ/T 188-2004) on the line.
	Water []WaterMeter
}

// PowerMeter is a simulated DL/T 645 electricity meter.
type PowerMeter struct {
	Name    string
	Address string // 12 digits
	Version dlt645sim.Version
	Energy  string // starting forward active energy, kWh (exact decimal)
	Phases  int    // 1 or 3
}

// WaterMeter is a simulated CJ/T 188 cold-water meter.
type WaterMeter struct {
	Name    string
	Address string // 14 digits
	Flow    string // starting cumulative flow, m³ (exact decimal)
	LPerH   int64  // litres per hour it runs at
}

// ModbusDevice is one Modbus slave and its register map.
type ModbusDevice struct {
	Unit   byte
	Name   string
	Points []Point
}

// Point is one value in a device's register map.
type Point struct {
	Name  string
	Table modbussim.Table
	Addr  uint16
	Type  string          // bool, int16, uint16, int32, uint32, float32
	Order modbussim.Order // word order of 32-bit types
	Scale string          // engineering value = raw × Scale (exact decimal text)
	Unit  string          // engineering unit
	Range string          // what the demo values do, for people
	// Value is the engineering value after elapsed time (booleans: != 0).
	Value func(elapsed time.Duration) float64
}

// Regs is how many registers (or bits) the point takes.
func (p Point) Regs() int {
	switch p.Type {
	case "int32", "uint32", "float32":
		return 2
	}
	return 1
}

// check reports a point the simulator cannot encode.
func (p Point) check() error {
	bitTable := p.Table == modbussim.Coils || p.Table == modbussim.DiscreteInputs
	switch p.Type {
	case "bool":
		if !bitTable {
			return fmt.Errorf("point %s: bool needs a coil or discrete table, not %v", p.Name, p.Table)
		}
	case "int16", "uint16", "int32", "uint32", "float32":
		if bitTable {
			return fmt.Errorf("point %s: %s needs a register table, not %v", p.Name, p.Type, p.Table)
		}
	default:
		return fmt.Errorf("point %s: unknown type %q", p.Name, p.Type)
	}
	if p.Regs() == 2 {
		if _, err := modbussim.ParseOrder(string(p.Order)); err != nil {
			return fmt.Errorf("point %s: %w", p.Name, err)
		}
	}
	if s, err := strconv.ParseFloat(p.Scale, 64); p.Type != "bool" && (err != nil || s == 0) {
		return fmt.Errorf("point %s: scale %q", p.Name, p.Scale)
	}
	if p.Value == nil {
		return fmt.Errorf("point %s: no value function", p.Name)
	}
	return nil
}

// write stores the point's value at elapsed into u.
func (p Point) write(u *modbussim.Unit, elapsed time.Duration) {
	v := p.Value(elapsed)
	if p.Type == "bool" {
		if p.Table == modbussim.Coils {
			u.SetCoil(p.Addr, v != 0)
		} else {
			u.SetDiscrete(p.Addr, v != 0)
		}
		return
	}
	scale, _ := strconv.ParseFloat(p.Scale, 64) // checked by check
	raw := v / scale
	var err error
	switch p.Type {
	case "int16":
		err = u.Set(p.Table, p.Addr, uint16(int16(math.Round(raw))))
	case "uint16":
		err = u.Set(p.Table, p.Addr, uint16(math.Round(raw)))
	case "int32":
		err = u.SetInt32(p.Table, p.Addr, int32(math.Round(raw)), p.Order)
	case "uint32":
		err = u.SetUint32(p.Table, p.Addr, uint32(math.Round(raw)), p.Order)
	case "float32":
		err = u.SetFloat32(p.Table, p.Addr, float32(raw), p.Order)
	}
	if err != nil { // check ruled this out
		panic(fmt.Sprintf("townsim: point %s: %v", p.Name, err))
	}
}

// server is what answers on one line.
type server interface {
	Serve(ctx context.Context, p hardware.Port) error
}

// simLine is a built line: its server, a one-line summary, and the Modbus
// units by id (for commands).
type simLine struct {
	Line
	server  server
	bus     *modbussim.Bus  // nil when the line has no Modbus units
	power   *dlt645sim.Line // nil when no DL/T 645 meters
	water   *cjt188sim.Line // nil when no CJ/T 188 meters
	units   map[byte]*modbusSim
	summary string
	meters  map[string]*dlt645sim.Meter // DL/T 645 meters by address (grid.go)
	waters  map[string]*cjt188sim.Meter // CJ/T 188 meters by address (grid.go)
}

// modbusSim is a running Modbus device: its unit, and the points that
// commands have pinned (animation leaves them alone).
type modbusSim struct {
	dev  ModbusDevice
	unit *modbussim.Unit

	mu   sync.Mutex
	held map[int]bool // index into dev.Points
}

// hold pins every point overlapping n values of table t from addr.
func (m *modbusSim) hold(t modbussim.Table, addr uint16, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, p := range m.dev.Points {
		if p.Table == t && int(addr) < int(p.Addr)+p.Regs() && int(p.Addr) < int(addr)+n {
			m.held[i] = true
		}
	}
}

// resume lets animation drive every point again.
func (m *modbusSim) resume() {
	m.mu.Lock()
	clear(m.held)
	m.mu.Unlock()
}

func (m *modbusSim) animate(elapsed time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, p := range m.dev.Points {
		if !m.held[i] {
			p.write(m.unit, elapsed)
		}
	}
}

// build makes the line's simulators; start is time zero of the values.
func (l Line) build(start time.Time, wireTime bool) (*simLine, error) {
	if err := l.Mode.Validate(); err != nil {
		return nil, fmt.Errorf("line %s: %w", l.Name, err)
	}
	if len(l.Modbus)+len(l.Power)+len(l.Water) == 0 {
		return nil, fmt.Errorf("line %s: no devices", l.Name)
	}
	sl := &simLine{Line: l, units: map[byte]*modbusSim{}, meters: map[string]*dlt645sim.Meter{}, waters: map[string]*cjt188sim.Meter{}}
	var servers []server
	var summary []string
	if len(l.Power) > 0 {
		var ms []*dlt645sim.Meter
		for i, pm := range l.Power {
			m := dlt645sim.NewMeter(pm.Address, pm.Version)
			if err := m.SetValue("energy_kwh", pm.Energy); err != nil {
				return nil, fmt.Errorf("line %s meter %s: %w", l.Name, pm.Address, err)
			}
			if pm.Phases > 0 {
				m.SetPhases(pm.Phases)
			}
			m.Animate(dlt645sim.Animation{Seed: uint64(i + 1), ClockOffset: time.Duration(i*7) * time.Second})
			ms = append(ms, m)
			sl.meters[pm.Address] = m
			summary = append(summary, fmt.Sprintf("%v meter %s", pm.Version, pm.Address))
		}
		sl.power = dlt645sim.NewLine(l.Mode, ms...)
		sl.power.WireTime = wireTime
		servers = append(servers, sl.power)
	}
	if len(l.Water) > 0 {
		var ms []*cjt188sim.Meter
		for _, wm := range l.Water {
			m := cjt188sim.NewMeter(wm.Address, 0x10)
			if err := m.SetValue("flow_m3", wm.Flow); err != nil {
				return nil, fmt.Errorf("line %s meter %s: %w", l.Name, wm.Address, err)
			}
			m.Animate(cjt188sim.Animation{FlowMLPerHour: wm.LPerH * 1000})
			ms = append(ms, m)
			sl.waters[wm.Address] = m
			summary = append(summary, "CJ/T 188 water meter "+wm.Address)
		}
		sl.water = cjt188sim.NewLine(l.Mode, ms...)
		sl.water.WireTime = wireTime
		servers = append(servers, sl.water)
	}
	if len(l.Modbus) == 0 {
		sl.server = multi(servers)
		sl.summary = strings.Join(summary, ", ")
		return sl, nil
	}
	var units []*modbussim.Unit
	var ids []string
	for _, d := range l.Modbus {
		if sl.units[d.Unit] != nil {
			return nil, fmt.Errorf("line %s: unit %d twice", l.Name, d.Unit)
		}
		for _, p := range d.Points {
			if err := p.check(); err != nil {
				return nil, fmt.Errorf("line %s unit %d: %w", l.Name, d.Unit, err)
			}
		}
		m := &modbusSim{dev: d, unit: modbussim.NewUnit(d.Unit), held: map[int]bool{}}
		m.animate(0) // the registers exist before the first request
		m.unit.Animate(func(t time.Time, _ *modbussim.Unit) { m.animate(t.Sub(start)) })
		sl.units[d.Unit] = m
		units = append(units, m.unit)
		ids = append(ids, strconv.Itoa(int(d.Unit)))
	}
	sl.bus = modbussim.NewBus(l.Mode, units...)
	sl.bus.WireTime = wireTime
	sl.server = multi(append(servers, sl.bus))
	sl.summary = strings.Join(append(summary, "modbus units "+strings.Join(ids, ",")), ", ")
	return sl, nil
}

// multi serves several protocols on one line: like devices on a real
// RS-485 bus, each hears every byte and answers only its own frames.
func multi(servers []server) server {
	if len(servers) == 1 {
		return servers[0]
	}
	return multiServer(servers)
}

type multiServer []server

func (ms multiServer) Serve(ctx context.Context, p hardware.Port) error {
	md := serialsim.NewMultidrop(p)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(ms)+1)
	for _, s := range ms {
		port := md.Attach()
		go func() { errc <- s.Serve(ctx, port) }()
	}
	go func() { errc <- md.Run(ctx) }()
	var first error
	for range len(ms) + 1 {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// listPoints prints the register map of every line, one point a row.
func (s Scenario) listPoints(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "line\tmode\tunit\tdevice\tpoint\ttable\taddr\ttype\torder\tscale\tunit\tvalues")
	for _, l := range s.Lines {
		for _, d := range l.Modbus {
			for _, p := range d.Points {
				order := "-"
				if p.Regs() == 2 {
					order = string(p.Order)
				}
				scale := p.Scale
				if scale == "" {
					scale = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%v\t%d\t%s\t%s\t%s\t%s\t%s\n",
					l.Name, strings.ReplaceAll(l.Mode.String(), " ", "-"), d.Unit, strings.ReplaceAll(d.Name, " ", "_"),
					p.Name, p.Table, p.Addr, p.Type, order, scale, orDash(p.Unit), p.Range)
			}
		}
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
