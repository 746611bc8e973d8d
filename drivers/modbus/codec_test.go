package modbus

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/hardware/serialsim"
)

type frameCase struct {
	Name    string
	Layer   string
	Unit    byte
	Source  string
	Request struct {
		Function byte
		Address  uint16
		Quantity uint16
		Values   []uint16
		Bits     string
	}
	RequestHex string `json:"request_hex"`
	ReplyHex   string `json:"reply_hex"`
	Want       struct {
		Registers []uint16
		Bits      string
		Exception *byte
		Address   *uint16
		Quantity  *uint16
		Error     string
	}
}

func loadFrames(t *testing.T) []frameCase {
	t.Helper()
	b, err := os.ReadFile("testdata/frames.json")
	if err != nil {
		t.Fatal(err)
	}
	var cs []frameCase
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cs); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Source == "" || c.Name == "" {
			t.Fatalf("testdata/frames.json: case %q has no source", c.Name)
		}
	}
	return cs
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func bitsOf(s string) []bool {
	b := make([]bool, len(s))
	for i, c := range s {
		b[i] = c == '1'
	}
	return b
}

func bitString(b []bool) string {
	var sb strings.Builder
	for _, x := range b {
		if x {
			sb.WriteByte('1')
		} else {
			sb.WriteByte('0')
		}
	}
	return sb.String()
}

func (c frameCase) request() Request {
	r := c.Request
	switch r.Function {
	case FuncWriteSingleCoil:
		return WriteSingleCoil(r.Address, r.Bits == "1")
	case FuncWriteSingleRegister:
		return WriteSingleRegister(r.Address, r.Values[0])
	case FuncWriteMultipleCoils:
		return WriteMultipleCoils(r.Address, bitsOf(r.Bits))
	case FuncWriteMultipleRegisters:
		return WriteMultipleRegisters(r.Address, r.Values)
	}
	return Request{Function: r.Function, Address: r.Address, Quantity: r.Quantity}
}

func TestCRCCheckValue(t *testing.T) {
	// The CRC catalogue's check value for CRC-16/MODBUS.
	if got := CRC16([]byte("123456789")); got != 0x4B37 {
		t.Fatalf("CRC16(123456789) = %04X, want 4B37", got)
	}
	// protocols.md §4.1: 01 03 00 00 00 05 → register 0xC985, sent 85 C9.
	if got := CRC16([]byte{1, 3, 0, 0, 0, 5}); got != 0xC985 {
		t.Fatalf("CRC16 = %04X, want C985", got)
	}
	if got := AppendCRC([]byte{1, 3, 0, 0, 0, 5}); !bytes.Equal(got, unhex(t, "01 03 00 00 00 05 85 C9")) {
		t.Fatalf("AppendCRC = % X", got)
	}
}

func TestGoldenCRC(t *testing.T) {
	n := 0
	for _, c := range loadFrames(t) {
		if c.Layer != "rtu" {
			continue
		}
		for _, h := range []string{c.RequestHex, c.ReplyHex} {
			if h == "" || c.Want.Error == "crc" {
				continue
			}
			b := unhex(t, h)
			got := AppendCRC(append([]byte(nil), b[:len(b)-2]...))
			if !bytes.Equal(got, b) {
				t.Errorf("%s: CRC of % X: got % X, want % X (%s)", c.Name, b[:len(b)-2], got[len(got)-2:], b[len(b)-2:], c.Source)
			}
			n++
		}
	}
	if n < 20 {
		t.Fatalf("only %d frames checked", n)
	}
}

func TestGoldenRequests(t *testing.T) {
	for _, c := range loadFrames(t) {
		if c.RequestHex == "" {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			pdu, err := c.request().AppendPDU(nil)
			if err != nil {
				t.Fatal(err)
			}
			got := pdu
			if c.Layer == "rtu" {
				got = AppendCRC(append([]byte{c.Unit}, pdu...))
			}
			if want := unhex(t, c.RequestHex); !bytes.Equal(got, want) {
				t.Fatalf("encoded % X, want % X (%s)", got, want, c.Source)
			}
		})
	}
}

// TestGoldenReplies decodes every reply: PDU cases with DecodeReply, RTU
// cases through the real RTU transport on a scripted port (split, CRC,
// unit and function checks included).
func TestGoldenReplies(t *testing.T) {
	for _, c := range loadFrames(t) {
		if c.ReplyHex == "" {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			req := c.request()
			var rep Reply
			var err error
			if c.Layer == "pdu" {
				rep, err = req.DecodeReply(unhex(t, c.ReplyHex))
			} else {
				pdu, perr := req.AppendPDU(nil)
				if perr != nil {
					t.Fatal(perr)
				}
				port := serialsim.NewScript(t, serialsim.Step{
					Expect: AppendCRC(append([]byte{c.Unit}, pdu...)),
					Reply:  unhex(t, c.ReplyHex),
				})
				rep, err = Do(context.Background(), NewRTU(port, 200*time.Millisecond, 0), c.Unit, req)
			}
			w := c.Want
			switch {
			case w.Error != "":
				want := map[string]error{"crc": ErrCRC, "unit": ErrWrongUnit, "function": ErrFunction, "length": ErrLength}[w.Error]
				if !errors.Is(err, want) || !errors.Is(err, drivers.ErrFrame) {
					t.Fatalf("err = %v, want %v and drivers.ErrFrame", err, want)
				}
				if w.Error == "crc" && !strings.Contains(err.Error(), "crc") {
					t.Fatalf("crc error does not say crc: %v", err)
				}
			case w.Exception != nil:
				var ex *ExceptionError
				if !errors.As(err, &ex) || ex.Code != *w.Exception || ex.Function != req.Function {
					t.Fatalf("err = %v, want exception %d", err, *w.Exception)
				}
				if c.Layer == "rtu" && ex.Unit != c.Unit {
					t.Fatalf("exception unit %d, want %d", ex.Unit, c.Unit)
				}
			default:
				if err != nil {
					t.Fatalf("%v (%s)", err, c.Source)
				}
				if w.Registers != nil && !equalU16(rep.Registers, w.Registers) {
					t.Fatalf("registers %v, want %v", rep.Registers, w.Registers)
				}
				if w.Bits != "" && bitString(rep.Bits) != w.Bits {
					t.Fatalf("bits %s, want %s", bitString(rep.Bits), w.Bits)
				}
				if w.Address != nil && rep.Address != *w.Address {
					t.Fatalf("address %d, want %d", rep.Address, *w.Address)
				}
				if w.Quantity != nil && rep.Quantity != *w.Quantity {
					t.Fatalf("quantity %d, want %d", rep.Quantity, *w.Quantity)
				}
			}
		})
	}
}

func equalU16(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRequestLimits(t *testing.T) {
	ok := []Request{
		ReadCoils(0, 2000), ReadDiscreteInputs(65535, 1), ReadHoldingRegisters(0, 125), ReadInputRegisters(65411, 125),
		WriteMultipleCoils(0, make([]bool, 1968)), WriteMultipleRegisters(0, make([]uint16, 123)),
	}
	for _, r := range ok {
		if _, err := r.AppendPDU(nil); err != nil {
			t.Errorf("%s: %v", r, err)
		}
	}
	bad := []Request{
		ReadCoils(0, 0), ReadCoils(0, 2001), ReadDiscreteInputs(0, 2001), ReadHoldingRegisters(0, 126),
		ReadInputRegisters(0, 0), ReadHoldingRegisters(65535, 2), WriteMultipleCoils(0, make([]bool, 1969)),
		WriteMultipleCoils(0, nil), WriteMultipleRegisters(0, make([]uint16, 124)), WriteMultipleRegisters(0, nil),
		WriteMultipleRegisters(65535, []uint16{1, 2}), {Function: 7, Quantity: 1},
		{Function: FuncWriteSingleRegister, Quantity: 1}, {Function: FuncWriteMultipleRegisters, Quantity: 3, Values: []uint16{1}},
	}
	for _, r := range bad {
		if _, err := r.AppendPDU(nil); !errors.Is(err, ErrRequest) {
			t.Errorf("%+v: err = %v, want ErrRequest", r, err)
		}
	}
}

func TestDecodeReplyRejects(t *testing.T) {
	cases := []struct {
		name string
		req  Request
		pdu  string
		want error
	}{
		{"empty", ReadHoldingRegisters(0, 1), "", ErrLength},
		{"no byte count", ReadHoldingRegisters(0, 1), "03", ErrLength},
		{"byte count vs qty", ReadHoldingRegisters(0, 2), "03 02 00 01", ErrLength},
		{"data shorter than count", ReadHoldingRegisters(0, 2), "03 04 00 01 00", ErrLength},
		{"data longer than count", ReadHoldingRegisters(0, 1), "03 02 00 01 00", ErrLength},
		{"coil count", ReadCoils(0, 9), "01 01 FF", ErrLength},
		{"other function", ReadHoldingRegisters(0, 1), "04 02 00 01", ErrFunction},
		{"other exception", ReadHoldingRegisters(0, 1), "84 02", ErrFunction},
		{"long exception", ReadHoldingRegisters(0, 1), "83 02 00", ErrLength},
		{"coil echo value", WriteSingleCoil(5, true), "05 00 05 00 00", ErrEcho},
		{"register echo address", WriteSingleRegister(5, 1), "06 00 06 00 01", ErrEcho},
		{"register echo value", WriteSingleRegister(5, 1), "06 00 05 00 02", ErrEcho},
		{"fc16 echo quantity", WriteMultipleRegisters(1, []uint16{1, 2}), "10 00 01 00 03", ErrEcho},
		{"fc15 short", WriteMultipleCoils(1, []bool{true}), "0F 00 01 00", ErrLength},
	}
	for _, c := range cases {
		_, err := c.req.DecodeReply(unhex(t, c.pdu))
		if !errors.Is(err, c.want) || !errors.Is(err, drivers.ErrFrame) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestExceptionError(t *testing.T) {
	err := error(&ExceptionError{Unit: 17, Function: 3, Code: 2})
	if !errors.Is(err, ErrIllegalDataAddress) || !errors.Is(err, ErrException) || errors.Is(err, ErrIllegalFunction) {
		t.Fatal("errors.Is does not follow the code")
	}
	if s := err.Error(); !strings.Contains(s, "illegal data address") || !strings.Contains(s, "unit 17") {
		t.Fatalf("Error() = %q", s)
	}
	names := map[byte]error{1: ErrIllegalFunction, 2: ErrIllegalDataAddress, 3: ErrIllegalDataValue, 4: ErrServerDeviceFailure,
		5: ErrAcknowledge, 6: ErrServerDeviceBusy, 8: ErrMemoryParityError, 10: ErrGatewayPathUnavailable, 11: ErrGatewayTargetFailed}
	for code, s := range names {
		if !errors.Is(&ExceptionError{Code: code}, s) {
			t.Errorf("code %d is not %v", code, s)
		}
	}
	if s := (&ExceptionError{Code: 0x7F}).Error(); !strings.Contains(s, "unknown") {
		t.Errorf("unknown code: %q", s)
	}
}

func TestSplitRTU(t *testing.T) {
	full := unhex(t, "11 03 04 00 8D 00 8E FB BD")
	for i := range len(full) {
		if skip, n, err := SplitRTU(full[:i]); skip != 0 || n != 0 || err != nil {
			t.Fatalf("prefix %d: %d %d %v, want need more", i, skip, n, err)
		}
	}
	if _, n, err := SplitRTU(append(full, 0x11, 0x22)); n != len(full) || err != nil {
		t.Fatalf("with trailing bytes: n=%d err=%v", n, err)
	}
	if skip, _, _ := SplitRTU(append([]byte{0, 0}, full...)); skip != 2 {
		t.Fatalf("leading zeros: skip %d", skip)
	}
	if _, n, err := SplitRTU(unhex(t, "11 83 02 C1 34")); n != 5 || err != nil {
		t.Fatalf("exception: n=%d err=%v", n, err)
	}
	if _, _, err := SplitRTU(unhex(t, "11 03 FB")); !errors.Is(err, ErrLength) {
		t.Fatalf("byte count 251: %v", err)
	}
	if _, _, err := SplitRTU(unhex(t, "11 2B 0E")); !errors.Is(err, ErrFunction) {
		t.Fatalf("function 0x2B: %v", err)
	}
}

// wordCases are the same values in every order, written out by hand from
// the definition (bytes A B C D of the big-endian value).
var wordCases = []struct {
	t    Type
	i    int64
	u    uint64
	f    float64
	regs map[Order][]uint16
}{
	{t: Float32, f: 12.5, regs: map[Order][]uint16{ABCD: {0x4148, 0x0000}, CDAB: {0x0000, 0x4148}, BADC: {0x4841, 0x0000}, DCBA: {0x0000, 0x4841}}},
	{t: Float32, f: -1.5, regs: map[Order][]uint16{ABCD: {0xBFC0, 0x0000}, CDAB: {0x0000, 0xBFC0}, BADC: {0xC0BF, 0x0000}, DCBA: {0x0000, 0xC0BF}}},
	{t: Int32, i: -2, regs: map[Order][]uint16{ABCD: {0xFFFF, 0xFFFE}, CDAB: {0xFFFE, 0xFFFF}, BADC: {0xFFFF, 0xFEFF}, DCBA: {0xFEFF, 0xFFFF}}},
	{t: Uint32, u: 0x12345678, regs: map[Order][]uint16{ABCD: {0x1234, 0x5678}, CDAB: {0x5678, 0x1234}, BADC: {0x3412, 0x7856}, DCBA: {0x7856, 0x3412}}},
	{t: Int16, i: -1, regs: map[Order][]uint16{ABCD: {0xFFFF}, CDAB: {0xFFFF}, BADC: {0xFFFF}, DCBA: {0xFFFF}}},
	{t: Int16, i: 258, regs: map[Order][]uint16{ABCD: {0x0102}, CDAB: {0x0102}, BADC: {0x0201}, DCBA: {0x0201}}},
	{t: Uint16, u: 65535, regs: map[Order][]uint16{ABCD: {0xFFFF}}},
	{t: Float64, f: 1.0, regs: map[Order][]uint16{ABCD: {0x3FF0, 0, 0, 0}, CDAB: {0, 0, 0, 0x3FF0}, BADC: {0xF03F, 0, 0, 0}, DCBA: {0, 0, 0, 0xF03F}}},
	{t: Uint64, u: 0x0102030405060708, regs: map[Order][]uint16{ABCD: {0x0102, 0x0304, 0x0506, 0x0708}, CDAB: {0x0708, 0x0506, 0x0304, 0x0102}, BADC: {0x0201, 0x0403, 0x0605, 0x0807}, DCBA: {0x0807, 0x0605, 0x0403, 0x0201}}},
	{t: Int64, i: math.MinInt64, regs: map[Order][]uint16{ABCD: {0x8000, 0, 0, 0}, DCBA: {0, 0, 0, 0x0080}}},
}

func TestWordOrders(t *testing.T) {
	for _, c := range wordCases {
		for o, regs := range c.regs {
			i, u, f, err := DecodeRegisters(regs, c.t, o)
			if err != nil {
				t.Fatal(err)
			}
			if i != c.i || u != c.u || f != c.f {
				t.Errorf("%s %s % X: got %d %d %v, want %d %d %v", c.t, o, regs, i, u, f, c.i, c.u, c.f)
			}
			enc, err := EncodeRegisters(c.t, o, c.i, c.u, c.f)
			if err != nil || !equalU16(enc, regs) {
				t.Errorf("encode %s %s: % X %v, want % X", c.t, o, enc, err, regs)
			}
		}
	}
	if _, _, _, err := DecodeRegisters([]uint16{1}, Float32, ABCD); !errors.Is(err, ErrLength) {
		t.Errorf("one register as float32: %v", err)
	}
	if _, err := EncodeRegisters(Int16, ABCD, 40000, 0, 0); err == nil {
		t.Error("40000 fits int16?")
	}
}

func TestMBAP(t *testing.T) {
	adu := AppendMBAP(nil, 0x1234, 17, unhex(t, "03 00 6B 00 03"))
	if want := unhex(t, "12 34 00 00 00 06 11 03 00 6B 00 03"); !bytes.Equal(adu, want) {
		t.Fatalf("MBAP % X, want % X", adu, want)
	}
	tid, unit, n, err := ParseMBAP(adu)
	if err != nil || tid != 0x1234 || unit != 17 || n != 5 {
		t.Fatalf("ParseMBAP: %d %d %d %v", tid, unit, n, err)
	}
	for _, h := range []string{"00 01 00 01 00 06 11", "00 01 00 00 00 01 11", "00 01 00 00 01 00 11", "00 01 00"} {
		if _, _, _, err := ParseMBAP(unhex(t, h)); !errors.Is(err, ErrMBAP) {
			t.Errorf("% s: %v", h, err)
		}
	}
}

func FuzzDecodeReply(f *testing.F) {
	for _, c := range []struct {
		fc        byte
		addr, qty uint16
		pdu       string
	}{
		{3, 107, 3, "03 06 02 2B 00 00 00 64"}, {1, 19, 19, "01 03 CD 6B 05"}, {2, 196, 22, "02 03 AC DB 35"},
		{4, 8, 1, "04 02 00 0A"}, {5, 172, 1, "05 00 AC FF 00"}, {6, 1, 3, "06 00 01 00 03"},
		{15, 19, 10, "0F 00 13 00 0A"}, {16, 1, 2, "10 00 01 00 02"}, {1, 1185, 1, "81 02"}, {3, 0, 125, "03 FA"},
	} {
		f.Add(c.fc, c.addr, c.qty, unhex(f, c.pdu))
	}
	f.Fuzz(func(t *testing.T, fc byte, addr, qty uint16, pdu []byte) {
		req := Request{Function: fc, Address: addr, Quantity: qty}
		switch fc {
		case FuncWriteSingleCoil:
			req.Bits = []bool{qty&1 == 1}
		case FuncWriteSingleRegister:
			req.Values = []uint16{qty}
		case FuncWriteMultipleCoils:
			req.Bits = make([]bool, qty%2000)
			req.Quantity = qty % 2000
		case FuncWriteMultipleRegisters:
			req.Values = make([]uint16, qty%125)
			req.Quantity = qty % 125
		}
		rep, err := req.DecodeReply(pdu)
		if err != nil {
			var ex *ExceptionError
			if !errors.As(err, &ex) && !errors.Is(err, ErrLength) && !errors.Is(err, ErrFunction) && !errors.Is(err, ErrEcho) {
				t.Fatalf("unspecific error %v", err)
			}
			if ex != nil && (len(pdu) != 2 || pdu[0] != fc|0x80) {
				t.Fatalf("exception from % X", pdu)
			}
			return
		}
		switch fc {
		case 1, 2:
			if len(rep.Bits) != int(qty) || len(pdu) != 2+(int(qty)+7)/8 {
				t.Fatalf("%d bits from % X for qty %d", len(rep.Bits), pdu, qty)
			}
		case 3, 4:
			if len(rep.Registers) != int(qty) || len(pdu) != 2+2*int(qty) {
				t.Fatalf("%d registers from % X for qty %d", len(rep.Registers), pdu, qty)
			}
		default:
			if len(pdu) != 5 || rep.Address != addr {
				t.Fatalf("write reply % X accepted", pdu)
			}
		}
	})
}

func FuzzRTUSplit(f *testing.F) {
	for _, c := range loadFramesF(f) {
		for _, h := range []string{c.RequestHex, c.ReplyHex} {
			if h != "" && c.Layer == "rtu" {
				f.Add(unhex(f, h))
			}
		}
	}
	f.Add([]byte{0, 0, 0x11})
	f.Add([]byte{0x11, 0x03, 0x00})
	f.Fuzz(func(t *testing.T, buf []byte) {
		skip, n, err := SplitRTU(buf)
		if skip < 0 || n < 0 || skip > len(buf) || n > len(buf) || (skip > 0 && n > 0) {
			t.Fatalf("skip %d n %d for %d bytes", skip, n, len(buf))
		}
		if err != nil {
			if !errors.Is(err, drivers.ErrFrame) || !(errors.Is(err, ErrCRC) || errors.Is(err, ErrLength) || errors.Is(err, ErrFunction)) {
				t.Fatalf("unspecific error %v", err)
			}
			return
		}
		if n > 0 {
			if n < 5 || CRC16(buf[:n-2]) != uint16(buf[n-2])|uint16(buf[n-1])<<8 {
				t.Fatalf("accepted % X", buf[:n])
			}
		}
	})
}

func loadFramesF(f *testing.F) []frameCase {
	b, err := os.ReadFile("testdata/frames.json")
	if err != nil {
		f.Fatal(err)
	}
	var cs []frameCase
	if err := json.Unmarshal(b, &cs); err != nil {
		f.Fatal(err)
	}
	return cs
}

func FuzzParseMBAP(f *testing.F) {
	f.Add([]byte{0x12, 0x34, 0, 0, 0, 6, 0x11})
	f.Add([]byte{0, 1, 0, 1, 0, 6, 0x11})
	f.Fuzz(func(t *testing.T, h []byte) {
		_, _, n, err := ParseMBAP(h)
		if err != nil {
			if !errors.Is(err, ErrMBAP) {
				t.Fatalf("unspecific error %v", err)
			}
			return
		}
		if n < 1 || n > MaxPDU {
			t.Fatalf("pdu length %d", n)
		}
	})
}
