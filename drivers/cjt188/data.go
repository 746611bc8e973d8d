package cjt188

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/townlink/townlink/drivers"
)

// Data identifiers, as written in the standard (high byte first).
const (
	DIMeterData  = 0x901F // metering data, read with FuncRead
	DIReadAddr   = 0x810A // address, read with FuncReadAddress
	meterDataLen = 22     // DI(2) SER CUR(4) U SETTLE(4) U TIME(7) ST(2)
)

// Reply and value errors.
var (
	ErrWrongAddress = errors.New("cjt188: reply from another address")
	ErrUnexpected   = errors.New("cjt188: unexpected reply")
	ErrLateReply    = errors.New("cjt188: only late replies (old SER)")
	ErrValue        = errors.New("cjt188: bad value")
	ErrUnit         = errors.New("cjt188: unit is not a volume")
	ErrAbnormal     = errors.New("cjt188: abnormal reply")
)

// AbnormalError is an abnormal reply (C | 0x40, e.g. 0xC1) and the status
// byte it carries (DATA: DI, SER, status [unsure: layout]).
type AbnormalError struct {
	Control byte
	Status  byte
}

func (e *AbnormalError) Error() string {
	return fmt.Sprintf("cjt188: abnormal reply %02X, status %02X", e.Control, e.Status)
}

// Is matches ErrAbnormal.
func (e *AbnormalError) Is(target error) bool { return target == ErrAbnormal }

// Volume unit codes.
const (
	UnitLitre       = 0x29
	UnitCubicMetres = 0x2C
)

// UnitName names a unit code (CJ/T 188-2004) ("m³", "kWh"), or "unknown".
func UnitName(u byte) string {
	switch u {
	case 0x01:
		return "J"
	case 0x02:
		return "Wh"
	case 0x05:
		return "kWh"
	case 0x08:
		return "MWh"
	case 0x0A:
		return "MWh×100"
	case 0x0B:
		return "kJ"
	case 0x0E:
		return "MJ"
	case 0x11:
		return "GJ"
	case 0x13:
		return "GJ×100"
	case 0x14:
		return "W"
	case 0x17:
		return "kW"
	case 0x1A:
		return "MW"
	case UnitLitre:
		return "L"
	case UnitCubicMetres:
		return "m³"
	case 0x32:
		return "L/h"
	case 0x35:
		return "m³/h"
	}
	return "unknown"
}

// Volume converts a 4-byte BCD flow register (XXXXXX.XX, low byte first)
// in unit u to cubic metres, exactly: 0x2C m³ as is, 0x29 L × 0.001. All
// FF means absent (present false). Any other unit is ErrUnit: heat and
// energy units belong to heat meters, whose record this package does not
// read.
func Volume(b []byte, u byte) (v drivers.Value, present bool, err error) {
	if len(b) != 4 {
		return drivers.Value{}, false, fmt.Errorf("%w: flow has %d bytes, want 4", ErrValue, len(b))
	}
	if b[0] == 0xFF && b[1] == 0xFF && b[2] == 0xFF && b[3] == 0xFF {
		return drivers.Value{}, false, nil
	}
	var m int64
	for i := 3; i >= 0; i-- {
		hi, lo := b[i]>>4, b[i]&0x0F
		if hi > 9 || lo > 9 {
			return drivers.Value{}, false, fmt.Errorf("%w: flow % X is not BCD", ErrValue, b)
		}
		m = m*100 + int64(hi)*10 + int64(lo)
	}
	switch u {
	case UnitCubicMetres:
		return drivers.Dec(m, -2), true, nil
	case UnitLitre:
		return drivers.Dec(m, -5), true, nil // hundredths of a litre = 10⁻⁵ m³
	}
	return drivers.Value{}, false, fmt.Errorf("%w: unit %02X (%s)", ErrUnit, u, UnitName(u))
}

// MeterData is the 901F record of a water (or gas) meter.
type MeterData struct {
	DI         uint16 // 0x901F, whichever byte order the meter sent
	DISwapped  bool   // the meter sent 1F 90
	SER        byte
	Flow       [4]byte // current cumulative flow, BCD XXXXXX.XX low byte first
	FlowUnit   byte
	Settle     [4]byte // cumulative flow on the settlement day
	SettleUnit byte
	Clock      [7]byte // ss mm hh DD MM YYlo YYhi, BCD
	Status     [2]byte // ST0 ST1 as sent
}

// ParseMeterData reads the DATA of a 901F reply (22 bytes).
func ParseMeterData(data []byte) (MeterData, error) {
	var d MeterData
	if len(data) != meterDataLen {
		return d, fmt.Errorf("%w: 901F record has %d bytes, want %d", ErrValue, len(data), meterDataLen)
	}
	switch {
	case data[0] == 0x90 && data[1] == 0x1F:
	case data[0] == 0x1F && data[1] == 0x90:
		d.DISwapped = true
	default:
		return d, fmt.Errorf("%w: DI %02X%02X, want 901F", ErrValue, data[0], data[1])
	}
	d.DI = DIMeterData
	d.SER = data[2]
	copy(d.Flow[:], data[3:7])
	d.FlowUnit = data[7]
	copy(d.Settle[:], data[8:12])
	d.SettleUnit = data[12]
	copy(d.Clock[:], data[13:20])
	copy(d.Status[:], data[20:22])
	return d, nil
}

// ClockString prints the clock bytes as YYYY-MM-DD hh:mm:ss, byte for
// byte in hex, whether or not they are a valid date.
func (d MeterData) ClockString() string {
	c := d.Clock
	return fmt.Sprintf("%02X%02X-%02X-%02X %02X:%02X:%02X", c[6], c[5], c[4], c[3], c[2], c[1], c[0])
}

// StatusHex is ST0 ST1 in hex, as sent.
func (d MeterData) StatusHex() string { return fmt.Sprintf("%02X%02X", d.Status[0], d.Status[1]) }

// StatusRaw is ST0 + 256·ST1 (little-endian, like every multi-byte field).
func (d MeterData) StatusRaw() int64 { return int64(d.Status[0]) | int64(d.Status[1])<<8 }

// Valve maps ST0 bits D1D0: 00 open, 01 closed, 11 fault. 10 is not
// defined and is reported as fault too; status_raw keeps the bits for
// vendors that use other masks.
func (d MeterData) Valve() string {
	switch d.Status[0] & 0x03 {
	case 0:
		return "open"
	case 1:
		return "closed"
	}
	return "fault"
}

// BatteryLow is ST0 bit D2.
func (d MeterData) BatteryLow() bool { return d.Status[0]&0x04 != 0 }

// Time reads the meter clock in loc. ok is false, without error, when the
// meter has no clock: all FF, or day, month and year all zero.
func (d MeterData) Time(loc *time.Location) (t time.Time, ok bool, err error) {
	c := d.Clock
	if c == [7]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF} {
		return time.Time{}, false, nil
	}
	if c[3] == 0 && c[4] == 0 && c[5] == 0 && c[6] == 0 {
		return time.Time{}, false, nil
	}
	var n [7]int
	for i, b := range c {
		hi, lo := b>>4, b&0x0F
		if hi > 9 || lo > 9 {
			return time.Time{}, false, fmt.Errorf("%w: clock %s is not BCD", ErrValue, d.ClockString())
		}
		n[i] = int(hi)*10 + int(lo)
	}
	year := n[6]*100 + n[5]
	mon := time.Month(n[4])
	if n[0] > 59 || n[1] > 59 || n[2] > 23 || mon < 1 || mon > 12 || n[3] < 1 ||
		n[3] > time.Date(year, mon+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return time.Time{}, false, fmt.Errorf("%w: clock %s is not a valid time", ErrValue, d.ClockString())
	}
	return time.Date(year, mon, n[3], n[2], n[1], n[0], 0, loc), true, nil
}

// Point names.
const (
	PointFlow        = "flow_m3"
	PointSettleFlow  = "settle_flow_m3"
	PointValve       = "valve"
	PointBatteryLow  = "battery_low"
	PointStatusRaw   = "status_raw"
	PointMeterTime   = "meter_time"
	PointClockOffset = "clock_offset_s"
)

// Values turns the record into points; now is the gateway clock when the
// reply arrived (for clock_offset_s). A value that cannot be read is left
// out and named in the error; the others are still returned.
func (d MeterData) Values(loc *time.Location, now time.Time) (map[string]drivers.Value, error) {
	out := map[string]drivers.Value{
		PointValve:      drivers.Text(d.Valve()),
		PointBatteryLow: drivers.Bool(d.BatteryLow()),
		PointStatusRaw:  drivers.Int(d.StatusRaw()),
	}
	var errs []error
	for _, f := range []struct {
		name string
		b    [4]byte
		u    byte
	}{{PointFlow, d.Flow, d.FlowUnit}, {PointSettleFlow, d.Settle, d.SettleUnit}} {
		v, ok, err := Volume(f.b[:], f.u)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		case ok:
			out[f.name] = v
		}
	}
	t, ok, err := d.Time(loc)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("%s: %w", PointMeterTime, err))
	case ok:
		out[PointMeterTime] = drivers.Text(t.Format(time.RFC3339))
		out[PointClockOffset] = drivers.Int(int64(t.Sub(now).Round(time.Second) / time.Second))
	}
	return out, errors.Join(errs...)
}

// diBytes puts a DI on the wire in the configured order: "901F" sends the
// high byte first (90 1F), "1F90" the low byte first.
func diBytes(di uint16, order string) []byte {
	if strings.EqualFold(order, "1F90") {
		return []byte{byte(di), byte(di >> 8)}
	}
	return []byte{byte(di >> 8), byte(di)}
}

// hasDI reports whether data starts with di in either byte order.
func hasDI(data []byte, di uint16) bool {
	if len(data) < 2 {
		return false
	}
	hi, lo := byte(di>>8), byte(di)
	return (data[0] == hi && data[1] == lo) || (data[0] == lo && data[1] == hi)
}
