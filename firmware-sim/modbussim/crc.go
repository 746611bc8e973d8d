package modbussim

// crc16 is CRC-16/MODBUS: init 0xFFFF, reflected polynomial 0xA001, no
// final XOR (MODBUS over Serial Line V1.02 §6.2.2). The low byte goes on
// the wire first.
func crc16(b []byte) uint16 {
	crc := uint16(crcInit)
	for _, c := range b {
		crc = crcByte(crc, c)
	}
	return crc
}

const crcInit = 0xFFFF

// crcByte feeds one byte into a running CRC-16/MODBUS.
func crcByte(crc uint16, c byte) uint16 {
	crc ^= uint16(c)
	for range 8 {
		if crc&1 != 0 {
			crc = crc>>1 ^ 0xA001
		} else {
			crc >>= 1
		}
	}
	return crc
}

// appendCRC appends the CRC of b, low byte first.
func appendCRC(b []byte) []byte {
	c := crc16(b)
	return append(b, byte(c), byte(c>>8))
}

// crcOK reports whether the last two bytes of frame are the CRC of the rest.
func crcOK(frame []byte) bool {
	if len(frame) < 4 {
		return false
	}
	n := len(frame) - 2
	c := crc16(frame[:n])
	return frame[n] == byte(c) && frame[n+1] == byte(c>>8)
}
