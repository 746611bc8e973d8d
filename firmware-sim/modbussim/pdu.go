package modbussim

import "encoding/binary"

// Exception codes (MODBUS Application Protocol V1.1b3 §7).
const (
	ExIllegalFunction    byte = 0x01
	ExIllegalDataAddress byte = 0x02
	ExIllegalDataValue   byte = 0x03
	ExServerFailure      byte = 0x04
)

// Quantity limits (Application Protocol V1.1b3 §6.1-6.12).
const (
	maxReadBits   = 2000 // FC 1, 2
	maxReadRegs   = 125  // FC 3, 4
	maxWriteBits  = 1968 // FC 15
	maxWriteRegs  = 123  // FC 16
	maxADU        = 256  // MODBUS over Serial Line V1.02 §2.5.1
	minADU        = 4    // address, function, CRC
	fixedReqLen   = 8    // FC 1-6: addr fc a a b b crc crc
	writeMultiHdr = 7    // FC 15/16 up to and including the byte count
)

// frameStatus is what splitFrame found at the head of the buffer.
type frameStatus uint8

const (
	needMore frameStatus = iota // wait for more bytes
	gotFrame                    // a complete frame with a good CRC
	dropByte                    // garbage or bad CRC: drop one byte and retry
)

// splitFrame finds the request at the head of b. The length comes from
// the header (FC 1-6: 8 bytes; FC 15/16: 7 + byte count + 2); for other
// function codes it is the shortest prefix with a valid CRC. idle means
// the line has gone quiet (no more bytes are coming for this frame), so an
// incomplete head is garbage.
func splitFrame(b []byte, idle bool) (int, frameStatus) {
	incomplete := func() (int, frameStatus) {
		if idle {
			return 0, dropByte
		}
		return 0, needMore
	}
	if len(b) < 2 {
		return incomplete()
	}
	want := 0
	switch fc := b[1]; {
	case fc >= 1 && fc <= 6:
		want = fixedReqLen
	case fc == 15 || fc == 16:
		if len(b) < writeMultiHdr {
			return incomplete()
		}
		want = writeMultiHdr + int(b[6]) + 2
		if want > maxADU {
			return 0, dropByte
		}
	case fc == 0 || fc >= 0x80:
		return 0, dropByte // not a request
	default:
		crc := crcByte(crcByte(crcInit, b[0]), b[1]) // running CRC of b[:n-2]
		for n := minADU; n <= len(b) && n <= maxADU; n++ {
			if b[n-2] == byte(crc) && b[n-1] == byte(crc>>8) {
				return n, gotFrame
			}
			crc = crcByte(crc, b[n-2])
		}
		if len(b) >= maxADU {
			return 0, dropByte
		}
		return incomplete()
	}
	if len(b) < want {
		return incomplete()
	}
	if !crcOK(b[:want]) {
		return 0, dropByte
	}
	return want, gotFrame
}

func exception(fc, code byte) []byte { return []byte{fc | 0x80, code} }

// process executes one request PDU (function code and data) and returns
// the reply PDU. Checks follow the spec's order: function code (01),
// quantity and byte count (03), address range (02).
func (u *Unit) process(pdu []byte) []byte {
	fc := pdu[0]
	d := pdu[1:]
	be := binary.BigEndian
	u.mu.Lock()
	defer u.mu.Unlock()
	switch fc {
	case 1, 2, 3, 4:
		if len(d) != 4 {
			return exception(fc, ExIllegalDataValue)
		}
		start, qty := be.Uint16(d), int(be.Uint16(d[2:]))
		if fc <= 2 {
			if qty < 1 || qty > maxReadBits {
				return exception(fc, ExIllegalDataValue)
			}
			m := u.coils
			if fc == 2 {
				m = u.discrete
			}
			bits, ok := readBits(m, start, qty)
			if !ok {
				return exception(fc, ExIllegalDataAddress)
			}
			return append([]byte{fc, byte(len(bits))}, bits...)
		}
		if qty < 1 || qty > maxReadRegs {
			return exception(fc, ExIllegalDataValue)
		}
		m := u.holding
		if fc == 4 {
			m = u.input
		}
		out := []byte{fc, byte(2 * qty)}
		for i := range qty {
			a := int(start) + i
			v, ok := m[uint16(a)]
			if a > 0xFFFF || !ok {
				return exception(fc, ExIllegalDataAddress)
			}
			out = be.AppendUint16(out, v)
		}
		return out
	case 5:
		if len(d) != 4 {
			return exception(fc, ExIllegalDataValue)
		}
		addr, v := be.Uint16(d), be.Uint16(d[2:])
		if v != 0x0000 && v != 0xFF00 {
			return exception(fc, ExIllegalDataValue)
		}
		if _, ok := u.coils[addr]; !ok {
			return exception(fc, ExIllegalDataAddress)
		}
		u.coils[addr] = v == 0xFF00
		return append([]byte{fc}, d...)
	case 6:
		if len(d) != 4 {
			return exception(fc, ExIllegalDataValue)
		}
		addr := be.Uint16(d)
		if _, ok := u.holding[addr]; !ok {
			return exception(fc, ExIllegalDataAddress)
		}
		u.holding[addr] = be.Uint16(d[2:])
		return append([]byte{fc}, d...)
	case 15, 16:
		if len(d) < 5 {
			return exception(fc, ExIllegalDataValue)
		}
		start, qty, count := be.Uint16(d), int(be.Uint16(d[2:])), int(d[4])
		vals := d[5:]
		if fc == 15 {
			if qty < 1 || qty > maxWriteBits || count != (qty+7)/8 || len(vals) != count {
				return exception(fc, ExIllegalDataValue)
			}
			if !allExist(u.coils, start, qty) {
				return exception(fc, ExIllegalDataAddress)
			}
			for i := range qty {
				u.coils[start+uint16(i)] = vals[i/8]>>(i%8)&1 == 1
			}
		} else {
			if qty < 1 || qty > maxWriteRegs || count != 2*qty || len(vals) != count {
				return exception(fc, ExIllegalDataValue)
			}
			if !allExist(u.holding, start, qty) {
				return exception(fc, ExIllegalDataAddress)
			}
			for i := range qty {
				u.holding[start+uint16(i)] = be.Uint16(vals[2*i:])
			}
		}
		return append([]byte{fc}, d[:4]...)
	}
	return exception(fc, ExIllegalFunction)
}

// readBits packs qty bits from start, LSB first, or reports a missing
// address.
func readBits(m map[uint16]bool, start uint16, qty int) ([]byte, bool) {
	if !allExist(m, start, qty) {
		return nil, false
	}
	out := make([]byte, (qty+7)/8)
	for i := range qty {
		if m[start+uint16(i)] {
			out[i/8] |= 1 << (i % 8)
		}
	}
	return out, true
}

func allExist[V any](m map[uint16]V, start uint16, qty int) bool {
	if int(start)+qty > 1<<16 {
		return false
	}
	for i := range qty {
		if _, ok := m[start+uint16(i)]; !ok {
			return false
		}
	}
	return true
}
