package modbus

import (
	"fmt"
	"strings"

	"github.com/townlink/townlink/drivers"
)

// Table is one of the four Modbus data tables.
type Table uint8

// Tables. The zero value is Holding.
const (
	Holding  Table = iota // holding registers, 4xxxx, FC 3 / 6 / 16
	Input                 // input registers, 3xxxx, FC 4
	Coil                  // coils, 0xxxx, FC 1 / 5 / 15
	Discrete              // discrete inputs, 1xxxx, FC 2
)

func (t Table) String() string {
	switch t {
	case Holding:
		return "holding"
	case Input:
		return "input"
	case Coil:
		return "coil"
	case Discrete:
		return "discrete"
	}
	return fmt.Sprintf("Table(%d)", uint8(t))
}

func (t Table) bits() bool { return t == Coil || t == Discrete }

// ParseTable accepts holding, input, coil, discrete (and hr, ir, co, di).
func ParseTable(s string) (Table, error) {
	switch strings.ToLower(s) {
	case "holding", "hr", "holding_register", "holding_registers":
		return Holding, nil
	case "input", "ir", "input_register", "input_registers":
		return Input, nil
	case "coil", "co", "coils":
		return Coil, nil
	case "discrete", "di", "discrete_input", "discrete_inputs":
		return Discrete, nil
	}
	return 0, fmt.Errorf("%w: modbus table %q (want holding, input, coil or discrete)", drivers.ErrConfig, s)
}

// Type is how a point's registers are read.
type Type uint8

// Types. The zero value is Uint16. Coil and Discrete points are Bool (the
// zero value is taken as Bool there).
const (
	Uint16 Type = iota
	Int16
	Uint32
	Int32
	Uint64
	Int64
	Float32
	Float64
	Bool
)

func (t Type) String() string {
	switch t {
	case Uint16:
		return "uint16"
	case Int16:
		return "int16"
	case Uint32:
		return "uint32"
	case Int32:
		return "int32"
	case Uint64:
		return "uint64"
	case Int64:
		return "int64"
	case Float32:
		return "float32"
	case Float64:
		return "float64"
	case Bool:
		return "bool"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Registers is how many 16-bit registers a value of this type spans (1 for Bool).
func (t Type) Registers() int {
	switch t {
	case Uint32, Int32, Float32:
		return 2
	case Uint64, Int64, Float64:
		return 4
	}
	return 1
}

// ParseType accepts uint16, int16, uint32, int32, uint64, int64, float32,
// float64 and bool (case-insensitive; "float" means float32).
func ParseType(s string) (Type, error) {
	l := strings.ToLower(s)
	if l == "float" {
		return Float32, nil
	}
	for t := Uint16; t <= Bool; t++ {
		if l == t.String() {
			return t, nil
		}
	}
	return 0, fmt.Errorf("%w: modbus type %q (want uint16, int16, uint32, int32, uint64, int64, float32, float64 or bool)", drivers.ErrConfig, s)
}

// Order is the byte order of a multi-register value, named by where the
// bytes A B C D of the big-endian value 0xAABBCCDD appear on the wire.
// ABCD is plain big-endian (the spec's register order); CDAB swaps words,
// BADC swaps the bytes in each register, DCBA does both. For 64-bit
// values the same two swaps apply to all four registers; for 16-bit values
// only the byte swap matters.
type Order uint8

// Orders. The zero value is ABCD.
const (
	ABCD Order = iota
	CDAB
	BADC
	DCBA
)

func (o Order) String() string {
	switch o {
	case ABCD:
		return "ABCD"
	case CDAB:
		return "CDAB"
	case BADC:
		return "BADC"
	case DCBA:
		return "DCBA"
	}
	return fmt.Sprintf("Order(%d)", uint8(o))
}

func (o Order) wordSwap() bool { return o == CDAB || o == DCBA }
func (o Order) byteSwap() bool { return o == BADC || o == DCBA }

// ParseOrder accepts ABCD, CDAB, BADC, DCBA (case-insensitive).
func ParseOrder(s string) (Order, error) {
	for o := ABCD; o <= DCBA; o++ {
		if strings.EqualFold(s, o.String()) {
			return o, nil
		}
	}
	return 0, fmt.Errorf("%w: modbus word order %q (want ABCD, CDAB, BADC or DCBA)", drivers.ErrConfig, s)
}
