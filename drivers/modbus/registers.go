package modbus

import (
	"encoding/binary"
	"fmt"
	"math"
)

// wordsToBytes puts registers in ABCD (big-endian) order.
func wordsToBytes(regs []uint16, o Order) []byte {
	b := make([]byte, 0, 2*len(regs))
	for i := range regs {
		r := regs[i]
		if o.wordSwap() {
			r = regs[len(regs)-1-i]
		}
		if o.byteSwap() {
			r = r<<8 | r>>8
		}
		b = binary.BigEndian.AppendUint16(b, r)
	}
	return b
}

// bytesToWords is the inverse of wordsToBytes.
func bytesToWords(b []byte, o Order) []uint16 {
	regs := make([]uint16, len(b)/2)
	for i := range regs {
		r := binary.BigEndian.Uint16(b[2*i:])
		if o.byteSwap() {
			r = r<<8 | r>>8
		}
		j := i
		if o.wordSwap() {
			j = len(regs) - 1 - i
		}
		regs[j] = r
	}
	return regs
}

// DecodeRegisters turns the registers of one value into its raw form: an
// int64 (signed types), a uint64 (unsigned types) or a float64.
func DecodeRegisters(regs []uint16, t Type, o Order) (i int64, u uint64, f float64, err error) {
	if t == Bool || t > Bool {
		return 0, 0, 0, fmt.Errorf("%w: type %s is not a register type", ErrRequest, t)
	}
	if len(regs) != t.Registers() {
		return 0, 0, 0, fmt.Errorf("%w: %s needs %d registers, got %d", ErrLength, t, t.Registers(), len(regs))
	}
	b := wordsToBytes(regs, o)
	switch t {
	case Uint16:
		u = uint64(binary.BigEndian.Uint16(b))
	case Int16:
		i = int64(int16(binary.BigEndian.Uint16(b)))
	case Uint32:
		u = uint64(binary.BigEndian.Uint32(b))
	case Int32:
		i = int64(int32(binary.BigEndian.Uint32(b)))
	case Uint64:
		u = binary.BigEndian.Uint64(b)
	case Int64:
		i = int64(binary.BigEndian.Uint64(b))
	case Float32:
		f = float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
	case Float64:
		f = math.Float64frombits(binary.BigEndian.Uint64(b))
	}
	return i, u, f, nil
}

func signed(t Type) bool { return t == Int16 || t == Int32 || t == Int64 }

// EncodeRegisters is the inverse of DecodeRegisters for one value of type t:
// signed types take i, unsigned types u, float types f. It fails when the
// value does not fit the type.
func EncodeRegisters(t Type, o Order, i int64, u uint64, f float64) ([]uint16, error) {
	b := make([]byte, 0, 8)
	switch t {
	case Uint16:
		if u > math.MaxUint16 {
			return nil, fmt.Errorf("%w: %d does not fit uint16", ErrRequest, u)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(u))
	case Int16:
		if i < math.MinInt16 || i > math.MaxInt16 {
			return nil, fmt.Errorf("%w: %d does not fit int16", ErrRequest, i)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(i))
	case Uint32:
		if u > math.MaxUint32 {
			return nil, fmt.Errorf("%w: %d does not fit uint32", ErrRequest, u)
		}
		b = binary.BigEndian.AppendUint32(b, uint32(u))
	case Int32:
		if i < math.MinInt32 || i > math.MaxInt32 {
			return nil, fmt.Errorf("%w: %d does not fit int32", ErrRequest, i)
		}
		b = binary.BigEndian.AppendUint32(b, uint32(i))
	case Uint64:
		b = binary.BigEndian.AppendUint64(b, u)
	case Int64:
		b = binary.BigEndian.AppendUint64(b, uint64(i))
	case Float32:
		b = binary.BigEndian.AppendUint32(b, math.Float32bits(float32(f)))
	case Float64:
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(f))
	default:
		return nil, fmt.Errorf("%w: type %s is not a register type", ErrRequest, t)
	}
	return bytesToWords(b, o), nil
}
