package modbussim

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
)

// Errors of the simulator's setters and parsers.
var (
	ErrTable = errors.New("modbussim: bad table")
	ErrOrder = errors.New("modbussim: bad word order")
	ErrFault = errors.New("modbussim: bad fault")
	ErrBus   = errors.New("modbussim: bad bus")
)

// Table is one of the four Modbus data tables.
type Table uint8

// The four tables, with the function codes that reach them.
const (
	Coils            Table = iota + 1 // 0x references: FC 1, 5, 15
	DiscreteInputs                    // 1x references: FC 2
	InputRegisters                    // 3x references: FC 4
	HoldingRegisters                  // 4x references: FC 3, 6, 16
)

func (t Table) String() string {
	switch t {
	case Coils:
		return "coil"
	case DiscreteInputs:
		return "discrete"
	case InputRegisters:
		return "input"
	case HoldingRegisters:
		return "holding"
	}
	return fmt.Sprintf("Table(%d)", uint8(t))
}

// ParseTable accepts coil, discrete, input or holding (a trailing "s" is
// allowed).
func ParseTable(s string) (Table, error) {
	switch strings.TrimSuffix(strings.ToLower(s), "s") {
	case "coil":
		return Coils, nil
	case "discrete", "discrete-input", "discrete_input":
		return DiscreteInputs, nil
	case "input", "input-register", "input_register":
		return InputRegisters, nil
	case "holding", "holding-register", "holding_register":
		return HoldingRegisters, nil
	}
	return 0, fmt.Errorf("%w %q (want coil, discrete, input or holding)", ErrTable, s)
}

// Order is the byte order of a 32-bit value spread over two registers:
// A is the most significant byte, and the letters list the bytes in the
// order they travel (first register's high byte first).
type Order string

// The four word/byte orders seen in the field.
const (
	ABCD Order = "ABCD" // big-endian, high word first
	CDAB Order = "CDAB" // low word first ("word swap")
	BADC Order = "BADC" // high word first, bytes swapped in each word
	DCBA Order = "DCBA" // little-endian
)

// ParseOrder accepts ABCD, CDAB, BADC or DCBA (any case).
func ParseOrder(s string) (Order, error) {
	o := Order(strings.ToUpper(s))
	if _, err := o.words(0); err != nil {
		return "", err
	}
	return o, nil
}

// words splits v into two registers in order o.
func (o Order) words(v uint32) ([2]uint16, error) {
	hi, lo := uint16(v>>16), uint16(v)
	swap := func(w uint16) uint16 { return w<<8 | w>>8 }
	switch Order(strings.ToUpper(string(o))) {
	case ABCD:
		return [2]uint16{hi, lo}, nil
	case CDAB:
		return [2]uint16{lo, hi}, nil
	case BADC:
		return [2]uint16{swap(hi), swap(lo)}, nil
	case DCBA:
		return [2]uint16{swap(lo), swap(hi)}, nil
	}
	return [2]uint16{}, fmt.Errorf("%w %q (want ABCD, CDAB, BADC or DCBA)", ErrOrder, string(o))
}

// Unit is one slave id: sparse holding and input registers, coils and
// discrete inputs. Only addresses that were set exist; a request that
// touches any other address gets exception 02 (illegal data address), as
// from a real device with a fixed register map. All methods are safe to
// call while a Bus serves the unit.
type Unit struct {
	id byte

	mu       sync.Mutex
	holding  map[uint16]uint16
	input    map[uint16]uint16
	coils    map[uint16]bool
	discrete map[uint16]bool
	fault    Fault
	animate  func(time.Time, *Unit)
}

// NewUnit returns an empty unit answering slave id (1..247).
func NewUnit(id byte) *Unit {
	return &Unit{
		id:       id,
		holding:  map[uint16]uint16{},
		input:    map[uint16]uint16{},
		coils:    map[uint16]bool{},
		discrete: map[uint16]bool{},
	}
}

// ID is the unit's slave id.
func (u *Unit) ID() byte { return u.id }

func mustFit(addr uint16, n int) {
	if int(addr)+n > 1<<16 {
		panic(fmt.Sprintf("modbus sim: %d values from address %d run past 65535", n, addr))
	}
}

// SetHolding sets holding registers from addr on (creating them). It
// panics if the values run past address 65535.
func (u *Unit) SetHolding(addr uint16, vals ...uint16) { u.setRegs(u.holding, addr, vals) }

// SetInput sets input registers from addr on (creating them). It panics if
// the values run past address 65535.
func (u *Unit) SetInput(addr uint16, vals ...uint16) { u.setRegs(u.input, addr, vals) }

func (u *Unit) setRegs(m map[uint16]uint16, addr uint16, vals []uint16) {
	mustFit(addr, len(vals))
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, v := range vals {
		m[addr+uint16(i)] = v
	}
}

// SetCoil sets (creates) one coil.
func (u *Unit) SetCoil(addr uint16, v bool) {
	u.mu.Lock()
	u.coils[addr] = v
	u.mu.Unlock()
}

// SetDiscrete sets (creates) one discrete input.
func (u *Unit) SetDiscrete(addr uint16, v bool) {
	u.mu.Lock()
	u.discrete[addr] = v
	u.mu.Unlock()
}

// Holding returns a holding register and whether it exists.
func (u *Unit) Holding(addr uint16) (uint16, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	v, ok := u.holding[addr]
	return v, ok
}

// Input returns an input register and whether it exists.
func (u *Unit) Input(addr uint16) (uint16, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	v, ok := u.input[addr]
	return v, ok
}

// Coil returns a coil and whether it exists.
func (u *Unit) Coil(addr uint16) (bool, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	v, ok := u.coils[addr]
	return v, ok
}

// Discrete returns a discrete input and whether it exists.
func (u *Unit) Discrete(addr uint16) (bool, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	v, ok := u.discrete[addr]
	return v, ok
}

// Set sets registers of a register table or bits (0 = off, anything else =
// on) of a bit table; the generic form behind the command language.
func (u *Unit) Set(t Table, addr uint16, vals ...uint16) error {
	if int(addr)+len(vals) > 1<<16 {
		return fmt.Errorf("%w: %d values from address %d run past 65535", ErrTable, len(vals), addr)
	}
	switch t {
	case HoldingRegisters:
		u.SetHolding(addr, vals...)
	case InputRegisters:
		u.SetInput(addr, vals...)
	case Coils, DiscreteInputs:
		u.mu.Lock()
		m := u.coils
		if t == DiscreteInputs {
			m = u.discrete
		}
		for i, v := range vals {
			m[addr+uint16(i)] = v != 0
		}
		u.mu.Unlock()
	default:
		return fmt.Errorf("%w: %v", ErrTable, t)
	}
	return nil
}

// SetUint32 stores v in two registers (addr, addr+1) of a register table
// in word order o.
func (u *Unit) SetUint32(t Table, addr uint16, v uint32, o Order) error {
	w, err := o.words(v)
	if err != nil {
		return fmt.Errorf("unit %d %v %d: %w", u.id, t, addr, err)
	}
	if t != HoldingRegisters && t != InputRegisters {
		return fmt.Errorf("%w: unit %d: a 32-bit value needs a register table, not %v", ErrTable, u.id, t)
	}
	return u.Set(t, addr, w[0], w[1])
}

// SetInt32 stores v like SetUint32 (two's complement).
func (u *Unit) SetInt32(t Table, addr uint16, v int32, o Order) error {
	return u.SetUint32(t, addr, uint32(v), o)
}

// SetFloat32 stores v as an IEEE 754 single like SetUint32.
func (u *Unit) SetFloat32(t Table, addr uint16, v float32, o Order) error {
	return u.SetUint32(t, addr, math.Float32bits(v), o)
}

// Animate installs fn, which a Bus calls before it answers each request
// addressed to this unit (not for broadcasts), with the bus's clock; fn
// may call the unit's setters. nil removes it.
func (u *Unit) Animate(fn func(t time.Time, u *Unit)) {
	u.mu.Lock()
	u.animate = fn
	u.mu.Unlock()
}

// SetFault makes the unit misbehave until the next SetFault (or, with
// Fault.Times, for that many requests). The zero Fault is no fault.
func (u *Unit) SetFault(f Fault) {
	u.mu.Lock()
	u.fault = f
	u.mu.Unlock()
}

// Fault returns the fault in force.
func (u *Unit) Fault() Fault {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.fault
}

// takeFault returns the fault for the request being handled and counts it
// down.
func (u *Unit) takeFault() Fault {
	u.mu.Lock()
	defer u.mu.Unlock()
	f := u.fault
	if f.Count > 0 {
		u.fault.Count--
		if u.fault.Count == 0 {
			u.fault = Fault{}
		}
	}
	return f
}
