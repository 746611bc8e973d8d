package modbus

// CRC16 is CRC-16/MODBUS: init 0xFFFF, reflected polynomial 0xA001, no
// final XOR. On the wire it is sent low byte first. (Bitwise: frames are
// at most 256 bytes, and no table means no package-level state.)
func CRC16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, x := range b {
		crc ^= uint16(x)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// AppendCRC appends the CRC of b, low byte first.
func AppendCRC(b []byte) []byte {
	c := CRC16(b)
	return append(b, byte(c), byte(c>>8))
}
