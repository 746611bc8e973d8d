package modbussim

import (
	"bytes"
	"testing"
)

// validFrames counts the places in in where a frame for one of ids with a
// good CRC could start: an upper bound on the replies.
func validFrames(in []byte, ids map[byte]bool) int {
	n := 0
	for i := range in {
		if !ids[in[i]] {
			continue
		}
		if i+minADU > len(in) {
			break
		}
		crc := crcByte(crcByte(crcInit, in[i]), in[i+1])
		for l := minADU; i+l <= len(in) && l <= maxADU; l++ { // crc is the CRC of in[i:i+l-2]
			if in[i+l-2] == byte(crc) && in[i+l-1] == byte(crc>>8) {
				n++
			}
			crc = crcByte(crc, in[i+l-2])
		}
	}
	return n
}

// FuzzRequest feeds arbitrary bytes through Serve: it never panics, and
// every reply is a well-formed frame from a unit on the bus, answering a
// frame with a good CRC that really was in the input.
func FuzzRequest(f *testing.F) {
	for _, c := range loadGolden(f) {
		f.Add(c.req, uint8(0))
		f.Add(append(append([]byte{0xFF, 0x11}, c.req...), c.req...), uint8(3))
	}
	f.Add(appendCRC([]byte{1, 0x10, 0, 0, 0, 1, 0xF0}), uint8(1))
	f.Add([]byte{1, 0x10, 0, 0, 0, 1, 0xFF, 1, 2, 3}, uint8(2))
	f.Add(appendCRC([]byte{1, 0x2B, 0x0E, 1, 0}), uint8(0))
	f.Fuzz(func(t *testing.T, in []byte, split uint8) {
		if len(in) > 4096 { // 16 maximal frames; longer inputs only slow the search
			return
		}
		units := []*Unit{NewUnit(1), NewUnit(17)}
		for _, u := range units {
			u.SetHolding(0, 1, 2, 3, 4, 5, 6, 7, 8)
			u.SetHolding(107, 1, 2, 3)
			u.SetInput(8, 10)
			for i := range 40 {
				u.SetCoil(uint16(i), i%3 == 0)
				u.SetDiscrete(uint16(196+i), i%2 == 0)
			}
		}
		units[1].SetFault(BadCRC().Times(1))
		var chunks [][]byte
		step := int(split)%7 + 1
		for i := 0; i < len(in); i += step {
			chunks = append(chunks, in[i:min(i+step, len(in))])
		}
		p := serveMem(t, NewBus(mode9600, units...), chunks...)
		ids := map[byte]bool{1: true, 17: true}
		replies, out, injected := 0, p.out, false
		for len(out) > 0 {
			// Each Write is one reply; find its length from the function code.
			if len(out) < 5 || !ids[out[0]] {
				t.Fatalf("reply garbage % X for input % X", p.out, in)
			}
			l := 0
			switch fc := out[1]; {
			case fc&0x80 != 0:
				l = 5
			case fc <= 4:
				l = 5 + int(out[2])
			default:
				l = 8
			}
			if l > len(out) {
				t.Fatalf("truncated reply % X for input % X", p.out, in)
			}
			if !crcOK(out[:l]) {
				fixed := bytes.Clone(out[:l])
				fixed[l-1] ^= 0xFF
				if out[0] != 17 || injected || !crcOK(fixed) {
					t.Fatalf("reply with bad CRC % X (not the injected one) for input % X", out[:l], in)
				}
				injected = true
			}
			out = out[l:]
			replies++
		}
		if replies != p.writes {
			t.Fatalf("%d replies in %d writes: % X", replies, p.writes, p.out)
		}
		if max := validFrames(in, ids); replies > max {
			t.Fatalf("%d replies but only %d good frames for our units in % X", replies, max, in)
		}
	})
}

// FuzzParseFault: the fault parser never panics and what it accepts
// round-trips through String.
func FuzzParseFault(f *testing.F) {
	for _, s := range []string{"none", "silent", "badcrc", "exception:4", "exception:0x0B", "slow:2s", "silent*3", "slow:1h*9", "exception:", "*", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFault(s)
		if err != nil {
			return
		}
		back, err := ParseFault(flt.String())
		if err != nil || back != flt {
			t.Fatalf("%q parsed as %+v, whose String %q parses as %+v, %v", s, flt, flt.String(), back, err)
		}
	})
}
