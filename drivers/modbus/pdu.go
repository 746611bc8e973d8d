package modbus

import (
	"encoding/binary"
	"fmt"
)

// Function codes (Modbus Application Protocol V1.1b3 §6).
const (
	FuncReadCoils              byte = 0x01
	FuncReadDiscreteInputs     byte = 0x02
	FuncReadHoldingRegisters   byte = 0x03
	FuncReadInputRegisters     byte = 0x04
	FuncWriteSingleCoil        byte = 0x05
	FuncWriteSingleRegister    byte = 0x06
	FuncWriteMultipleCoils     byte = 0x0F
	FuncWriteMultipleRegisters byte = 0x10
)

// Quantity limits per request (V1.1b3 §6.1-6.4, 6.11, 6.12).
const (
	MaxReadBits       = 2000 // FC 1, 2
	MaxReadRegisters  = 125  // FC 3, 4
	MaxWriteBits      = 1968 // FC 15
	MaxWriteRegisters = 123  // FC 16
)

// MaxPDU is the largest protocol data unit (function code + data).
const MaxPDU = 253

// Request is one Modbus request. Build it with ReadCoils, ReadHoldingRegisters,
// WriteSingleCoil, … rather than by hand.
type Request struct {
	Function byte
	Address  uint16
	// Quantity of bits or registers to read, or written by FC 15/16.
	Quantity uint16
	// Values: the register written by FC 6 (one value) or FC 16.
	Values []uint16
	// Bits: the coil written by FC 5 (one bit) or FC 15.
	Bits []bool
}

// ReadCoils is FC 1: qty coils from addr.
func ReadCoils(addr, qty uint16) Request {
	return Request{Function: FuncReadCoils, Address: addr, Quantity: qty}
}

// ReadDiscreteInputs is FC 2.
func ReadDiscreteInputs(addr, qty uint16) Request {
	return Request{Function: FuncReadDiscreteInputs, Address: addr, Quantity: qty}
}

// ReadHoldingRegisters is FC 3.
func ReadHoldingRegisters(addr, qty uint16) Request {
	return Request{Function: FuncReadHoldingRegisters, Address: addr, Quantity: qty}
}

// ReadInputRegisters is FC 4.
func ReadInputRegisters(addr, qty uint16) Request {
	return Request{Function: FuncReadInputRegisters, Address: addr, Quantity: qty}
}

// WriteSingleCoil is FC 5 (on is sent as FF00, off as 0000).
func WriteSingleCoil(addr uint16, on bool) Request {
	return Request{Function: FuncWriteSingleCoil, Address: addr, Quantity: 1, Bits: []bool{on}}
}

// WriteSingleRegister is FC 6.
func WriteSingleRegister(addr, v uint16) Request {
	return Request{Function: FuncWriteSingleRegister, Address: addr, Quantity: 1, Values: []uint16{v}}
}

// WriteMultipleCoils is FC 15.
func WriteMultipleCoils(addr uint16, bits []bool) Request {
	return Request{Function: FuncWriteMultipleCoils, Address: addr, Quantity: uint16(min(len(bits), 0xFFFF)), Bits: bits}
}

// WriteMultipleRegisters is FC 16.
func WriteMultipleRegisters(addr uint16, vals []uint16) Request {
	return Request{Function: FuncWriteMultipleRegisters, Address: addr, Quantity: uint16(min(len(vals), 0xFFFF)), Values: vals}
}

// IsWrite reports whether the request writes (and so may be broadcast).
func (r Request) IsWrite() bool {
	switch r.Function {
	case FuncWriteSingleCoil, FuncWriteSingleRegister, FuncWriteMultipleCoils, FuncWriteMultipleRegisters:
		return true
	}
	return false
}

func (r Request) String() string {
	last := int(r.Address) + int(r.Quantity) - 1
	return fmt.Sprintf("function %d address %d..%d", r.Function, r.Address, max(last, int(r.Address)))
}

// Validate checks the function code, the quantity limits and that the
// addressed range fits in 0..65535.
func (r Request) Validate() error {
	var limit int
	switch r.Function {
	case FuncReadCoils, FuncReadDiscreteInputs:
		limit = MaxReadBits
	case FuncReadHoldingRegisters, FuncReadInputRegisters:
		limit = MaxReadRegisters
	case FuncWriteSingleCoil:
		if len(r.Bits) != 1 || r.Quantity != 1 {
			return fmt.Errorf("%w: function 5 writes exactly one coil, got %d", ErrRequest, len(r.Bits))
		}
		return nil
	case FuncWriteSingleRegister:
		if len(r.Values) != 1 || r.Quantity != 1 {
			return fmt.Errorf("%w: function 6 writes exactly one register, got %d", ErrRequest, len(r.Values))
		}
		return nil
	case FuncWriteMultipleCoils:
		limit = MaxWriteBits
		if len(r.Bits) != int(r.Quantity) {
			return fmt.Errorf("%w: function 15 quantity %d but %d coils", ErrRequest, r.Quantity, len(r.Bits))
		}
	case FuncWriteMultipleRegisters:
		limit = MaxWriteRegisters
		if len(r.Values) != int(r.Quantity) {
			return fmt.Errorf("%w: function 16 quantity %d but %d registers", ErrRequest, r.Quantity, len(r.Values))
		}
	default:
		return fmt.Errorf("%w: unsupported function code %d", ErrRequest, r.Function)
	}
	if r.Quantity < 1 || int(r.Quantity) > limit {
		return fmt.Errorf("%w: function %d quantity %d (want 1..%d)", ErrRequest, r.Function, r.Quantity, limit)
	}
	if int(r.Address)+int(r.Quantity) > 0x10000 {
		return fmt.Errorf("%w: function %d address %d + quantity %d passes 65535", ErrRequest, r.Function, r.Address, r.Quantity)
	}
	return nil
}

// AppendPDU validates r and appends its PDU (function code and data, no
// unit id, no CRC) to b.
func (r Request) AppendPDU(b []byte) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return b, err
	}
	b = append(b, r.Function)
	b = binary.BigEndian.AppendUint16(b, r.Address)
	switch r.Function {
	case FuncWriteSingleCoil:
		var v uint16
		if r.Bits[0] {
			v = 0xFF00
		}
		b = binary.BigEndian.AppendUint16(b, v)
	case FuncWriteSingleRegister:
		b = binary.BigEndian.AppendUint16(b, r.Values[0])
	case FuncWriteMultipleCoils:
		b = binary.BigEndian.AppendUint16(b, r.Quantity)
		b = append(b, byte((len(r.Bits)+7)/8))
		b = appendBits(b, r.Bits)
	case FuncWriteMultipleRegisters:
		b = binary.BigEndian.AppendUint16(b, r.Quantity)
		b = append(b, byte(2*len(r.Values)))
		for _, v := range r.Values {
			b = binary.BigEndian.AppendUint16(b, v)
		}
	default:
		b = binary.BigEndian.AppendUint16(b, r.Quantity)
	}
	return b, nil
}

// appendBits packs bits LSB first.
func appendBits(b []byte, bits []bool) []byte {
	for i := 0; i < len(bits); i += 8 {
		var x byte
		for j := 0; j < 8 && i+j < len(bits); j++ {
			if bits[i+j] {
				x |= 1 << j
			}
		}
		b = append(b, x)
	}
	return b
}

// Reply is a decoded normal reply.
type Reply struct {
	Function byte
	// Bits read by FC 1/2 (exactly the quantity asked for).
	Bits []bool
	// Registers read by FC 3/4.
	Registers []uint16
	// Address and Quantity echoed by FC 15/16; Address and the value (as
	// Registers[0], or Bits[0] for FC 5) echoed by FC 5/6.
	Address  uint16
	Quantity uint16
}

// DecodeReply checks that pdu (function code and data, as returned by a
// Transport) is the complete normal reply to r and decodes it. An
// exception PDU gives *ExceptionError (with Unit 0: a PDU carries no unit;
// transports fill it in). Other failures wrap ErrFunction, ErrLength or
// ErrEcho (all drivers.ErrFrame).
func (r Request) DecodeReply(pdu []byte) (Reply, error) {
	if err := checkReply(0, r.Function, pdu); err != nil {
		return Reply{}, err
	}
	fc := pdu[0]
	rep := Reply{Function: fc}
	switch fc {
	case FuncReadCoils, FuncReadDiscreteInputs, FuncReadHoldingRegisters, FuncReadInputRegisters:
		if len(pdu) < 2 {
			return Reply{}, fmt.Errorf("%w: function %d reply has no byte count", ErrLength, fc)
		}
		want := (int(r.Quantity) + 7) / 8
		if fc == FuncReadHoldingRegisters || fc == FuncReadInputRegisters {
			want = 2 * int(r.Quantity)
		}
		if bc := int(pdu[1]); bc != want {
			return Reply{}, fmt.Errorf("%w: byte count %d for quantity %d (want %d)", ErrLength, bc, r.Quantity, want)
		}
		if len(pdu) != 2+want {
			return Reply{}, fmt.Errorf("%w: function %d reply has %d data bytes, byte count says %d", ErrLength, fc, len(pdu)-2, want)
		}
		data := pdu[2:]
		if fc == FuncReadCoils || fc == FuncReadDiscreteInputs {
			rep.Bits = make([]bool, r.Quantity)
			for i := range rep.Bits {
				rep.Bits[i] = data[i/8]>>(i%8)&1 != 0
			}
		} else {
			rep.Registers = make([]uint16, r.Quantity)
			for i := range rep.Registers {
				rep.Registers[i] = binary.BigEndian.Uint16(data[2*i:])
			}
		}
		rep.Address, rep.Quantity = r.Address, r.Quantity
		return rep, nil
	case FuncWriteSingleCoil, FuncWriteSingleRegister, FuncWriteMultipleCoils, FuncWriteMultipleRegisters:
		if len(pdu) != 5 {
			return Reply{}, fmt.Errorf("%w: function %d reply of %d bytes (want 5)", ErrLength, fc, len(pdu))
		}
		addr := binary.BigEndian.Uint16(pdu[1:])
		v := binary.BigEndian.Uint16(pdu[3:])
		if addr != r.Address {
			return Reply{}, fmt.Errorf("%w: function %d address %d, wrote %d", ErrEcho, fc, addr, r.Address)
		}
		rep.Address = addr
		switch fc {
		case FuncWriteSingleCoil:
			want := uint16(0)
			if len(r.Bits) > 0 && r.Bits[0] {
				want = 0xFF00
			}
			if v != want {
				return Reply{}, fmt.Errorf("%w: coil value %04X, wrote %04X", ErrEcho, v, want)
			}
			rep.Quantity, rep.Bits = 1, []bool{v == 0xFF00}
		case FuncWriteSingleRegister:
			if len(r.Values) == 0 || v != r.Values[0] {
				return Reply{}, fmt.Errorf("%w: register value %d, wrote %v", ErrEcho, v, r.Values)
			}
			rep.Quantity, rep.Registers = 1, []uint16{v}
		default:
			if v != r.Quantity {
				return Reply{}, fmt.Errorf("%w: function %d quantity %d, wrote %d", ErrEcho, fc, v, r.Quantity)
			}
			rep.Quantity = v
		}
		return rep, nil
	}
	return Reply{}, fmt.Errorf("%w: unsupported function code %d", ErrFunction, fc)
}
