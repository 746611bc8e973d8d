package dlt645

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/townlink/townlink/drivers"
)

// Version is the protocol edition a meter speaks.
type Version uint8

// Versions. The zero value is 2007.
const (
	V2007 Version = iota // DL/T 645-2007: 4-byte DI, read 0x11
	V1997                // DL/T 645-1997: 2-byte DI, read 0x01
)

func (v Version) String() string {
	switch v {
	case V2007:
		return "DL/T 645-2007"
	case V1997:
		return "DL/T 645-1997"
	}
	return fmt.Sprintf("Version(%d)", uint8(v))
}

func (v Version) valid() bool { return v == V2007 || v == V1997 }

// diLen is the DI size on the wire.
func (v Version) diLen() int {
	if v == V1997 {
		return 2
	}
	return 4
}

// readFunc is the read-data function code.
func (v Version) readFunc() byte {
	if v == V1997 {
		return Func97Read
	}
	return FuncRead
}

// Point names beyond the contract's standard power set.
const (
	PointMeterTime   = "meter_time"     // Text, RFC 3339 in the meter's zone
	PointClockOffset = "clock_offset_s" // Int, meter clock − gateway clock
)

// ItemKind says how an item's value bytes are laid out.
type ItemKind uint8

// Item kinds.
const (
	KindNumbers ItemKind = iota // one BCD number per point, Size bytes each
	KindTariffs                 // total + T1..Tn, Size bytes each (n from L)
	KindDate                    // YYMMDDWW, sent WW DD MM YY
	KindTime                    // hhmmss, sent ss mm hh
	KindDigits                  // 12 digits (address, meter number), no point
)

// Item is one data identifier of the catalogue.
type Item struct {
	DI     uint32 // 2007: DI3 DI2 DI1 DI0 (0x00010000); 1997: DI1 DI0 (0x9010)
	Name   string
	Kind   ItemKind
	Points []string // contract point names, one per value, in order
	Size   int      // bytes per value
	Format string   // as the standard writes it: XXXXXX.XX
	Unit   string
	Signed bool // bit 7 of the most significant byte is the sign
}

// Exp is the decimal exponent of Format: XXX.XXX is −3.
func (it Item) Exp() int32 {
	if _, frac, ok := strings.Cut(it.Format, "."); ok {
		return -int32(len(frac))
	}
	return 0
}

// IsBlock reports an item that carries several points.
func (it Item) IsBlock() bool { return it.Kind == KindTariffs || len(it.Points) > 1 }

// DIString is the DI as written in the standard (8 or 4 hex digits).
func (it Item) DIString(v Version) string {
	if v == V1997 {
		return fmt.Sprintf("%04X", it.DI)
	}
	return fmt.Sprintf("%08X", it.DI)
}

func energyTariffs(n int) []string {
	p := []string{"energy_kwh"}
	for i := 1; i <= n; i++ {
		p = append(p, fmt.Sprintf("energy_t%d_kwh", i))
	}
	return p
}

// Items returns the catalogue of a version, in the order a poll reads them.
// Formats follow protocols.md §1.3 and §2.
func Items(v Version) []Item {
	num := func(di uint32, name, point string, size int, format, unit string, signed bool) Item {
		return Item{DI: di, Name: name, Kind: KindNumbers, Points: []string{point}, Size: size, Format: format, Unit: unit, Signed: signed}
	}
	block := func(di uint32, name string, points []string, size int, format, unit string, signed bool) Item {
		return Item{DI: di, Name: name, Kind: KindNumbers, Points: points, Size: size, Format: format, Unit: unit, Signed: signed}
	}
	tariffs := func(di uint32) Item {
		return Item{DI: di, Name: "positive active energy, total and tariffs", Kind: KindTariffs, Points: energyTariffs(4), Size: 4, Format: "XXXXXX.XX", Unit: "kWh"}
	}
	volts := []string{"voltage_a_v", "voltage_b_v", "voltage_c_v"}
	amps := []string{"current_a_a", "current_b_a", "current_c_a"}
	if v == V1997 {
		return []Item{
			num(0x9010, "positive active energy total", "energy_kwh", 4, "XXXXXX.XX", "kWh", false),
			num(0x9011, "positive active energy T1", "energy_t1_kwh", 4, "XXXXXX.XX", "kWh", false),
			num(0x9012, "positive active energy T2", "energy_t2_kwh", 4, "XXXXXX.XX", "kWh", false),
			num(0x9013, "positive active energy T3", "energy_t3_kwh", 4, "XXXXXX.XX", "kWh", false),
			num(0x9014, "positive active energy T4", "energy_t4_kwh", 4, "XXXXXX.XX", "kWh", false),
			tariffs(0x901F),
			num(0x9020, "reverse active energy total", "energy_rev_kwh", 4, "XXXXXX.XX", "kWh", false),
			num(0xB611, "phase A voltage", volts[0], 2, "XXX", "V", false),
			num(0xB612, "phase B voltage", volts[1], 2, "XXX", "V", false),
			num(0xB613, "phase C voltage", volts[2], 2, "XXX", "V", false),
			num(0xB621, "phase A current", amps[0], 2, "XX.XX", "A", false),
			num(0xB622, "phase B current", amps[1], 2, "XX.XX", "A", false),
			num(0xB623, "phase C current", amps[2], 2, "XX.XX", "A", false),
			// 1997 has no sign rule for power [unsure]; XX.XXXX leaves no spare bit.
			num(0xB630, "instantaneous active power total", "power_kw", 3, "XX.XXXX", "kW", false),
			// B650 format is [unsure] in protocols.md; |pf| ≤ 1 leaves bit 7 free for a sign.
			num(0xB650, "power factor total", "pf", 2, "X.XXX", "", true),
			{DI: 0xC010, Name: "date and weekday", Kind: KindDate, Size: 4, Format: "YYMMDDWW"},
			{DI: 0xC011, Name: "time", Kind: KindTime, Size: 3, Format: "hhmmss"},
			{DI: 0xC032, Name: "meter number", Kind: KindDigits, Size: 6, Format: "NNNNNNNNNNNN"},
		}
	}
	return []Item{
		num(0x00010000, "positive active energy total", "energy_kwh", 4, "XXXXXX.XX", "kWh", false),
		num(0x00010100, "positive active energy T1", "energy_t1_kwh", 4, "XXXXXX.XX", "kWh", false),
		num(0x00010200, "positive active energy T2", "energy_t2_kwh", 4, "XXXXXX.XX", "kWh", false),
		num(0x00010300, "positive active energy T3", "energy_t3_kwh", 4, "XXXXXX.XX", "kWh", false),
		num(0x00010400, "positive active energy T4", "energy_t4_kwh", 4, "XXXXXX.XX", "kWh", false),
		tariffs(0x0001FF00),
		num(0x00020000, "reverse active energy total", "energy_rev_kwh", 4, "XXXXXX.XX", "kWh", false),
		num(0x02010100, "phase A voltage", volts[0], 2, "XXX.X", "V", false),
		num(0x02010200, "phase B voltage", volts[1], 2, "XXX.X", "V", false),
		num(0x02010300, "phase C voltage", volts[2], 2, "XXX.X", "V", false),
		block(0x0201FF00, "voltage block", volts, 2, "XXX.X", "V", false),
		num(0x02020100, "phase A current", amps[0], 3, "XXX.XXX", "A", true),
		num(0x02020200, "phase B current", amps[1], 3, "XXX.XXX", "A", true),
		num(0x02020300, "phase C current", amps[2], 3, "XXX.XXX", "A", true),
		block(0x0202FF00, "current block", amps, 3, "XXX.XXX", "A", true),
		num(0x02030000, "instantaneous active power total", "power_kw", 3, "XX.XXXX", "kW", true),
		num(0x02060000, "power factor total", "pf", 2, "X.XXX", "", true),
		num(0x02800002, "grid frequency", "freq_hz", 2, "XX.XX", "Hz", false),
		{DI: 0x04000101, Name: "date and weekday", Kind: KindDate, Size: 4, Format: "YYMMDDWW"},
		{DI: 0x04000102, Name: "time", Kind: KindTime, Size: 3, Format: "hhmmss"},
		{DI: 0x04000401, Name: "communication address", Kind: KindDigits, Size: 6, Format: "NNNNNNNNNNNN"},
	}
}

// Lookup finds a DI in a version's catalogue.
func Lookup(v Version, di uint32) (Item, bool) {
	for _, it := range Items(v) {
		if it.DI == di {
			return it, true
		}
	}
	return Item{}, false
}

// StandardPoints is the contract's power point set a version can read: the
// default of Config.Points.
func StandardPoints(v Version) []string {
	p := []string{"energy_kwh", "energy_rev_kwh", "voltage_a_v", "voltage_b_v", "voltage_c_v",
		"current_a_a", "current_b_a", "current_c_a", "power_kw", "pf"}
	if v == V2007 {
		p = append(p, "freq_hz") // no frequency item in 1997
	}
	return p
}

// Points lists every point name a version can read.
func Points(v Version) []string {
	var p []string
	for _, it := range Items(v) {
		for _, n := range it.Points {
			if !slices.Contains(p, n) {
				p = append(p, n)
			}
		}
	}
	return append(p, PointMeterTime, PointClockOffset)
}

// DecodeBCD reads a little-endian packed-BCD number (low byte first) as
// mant × 10^exp. With signed, bit 7 of the most significant byte is the
// sign. All bytes FF means "absent" (present = false, no error).
func DecodeBCD(b []byte, exp int32, signed bool) (v drivers.Value, present bool, err error) {
	if len(b) == 0 || len(b) > 9 {
		return drivers.Value{}, false, fmt.Errorf("%w: %d BCD bytes, want 1 to 9", ErrValue, len(b))
	}
	allFF := true
	for _, c := range b {
		allFF = allFF && c == 0xFF
	}
	if allFF {
		return drivers.Value{}, false, nil
	}
	var m int64
	neg := false
	for i := len(b) - 1; i >= 0; i-- {
		c := b[i]
		if signed && i == len(b)-1 {
			neg = c&0x80 != 0
			c &= 0x7F
		}
		hi, lo := c>>4, c&0x0F
		if hi > 9 || lo > 9 {
			return drivers.Value{}, false, fmt.Errorf("%w: byte %02X of % X is not BCD", ErrValue, b[i], b)
		}
		m = m*100 + int64(hi)*10 + int64(lo)
	}
	if neg {
		m = -m
	}
	return drivers.Dec(m, exp), true, nil
}

func bcdByte(c byte) (int, bool) {
	hi, lo := c>>4, c&0x0F
	if hi > 9 || lo > 9 {
		return 0, false
	}
	return int(hi)*10 + int(lo), true
}

// Values decodes a numeric item's value bytes (DATA after the DI) into its
// points. Absent values (all FF) are left out.
func (it Item) Values(b []byte) (map[string]drivers.Value, error) {
	points := it.Points
	switch it.Kind {
	case KindNumbers:
		if len(b) != it.Size*len(points) {
			return nil, fmt.Errorf("%w: %s: %d value bytes, want %d", ErrValue, it.Name, len(b), it.Size*len(points))
		}
	case KindTariffs:
		if len(b) == 0 || len(b)%it.Size != 0 {
			return nil, fmt.Errorf("%w: %s: %d value bytes, want a multiple of %d", ErrValue, it.Name, len(b), it.Size)
		}
		points = energyTariffs(len(b)/it.Size - 1)
	default:
		return nil, fmt.Errorf("%w: %s is not a numeric item", ErrValue, it.Name)
	}
	out := make(map[string]drivers.Value, len(points))
	for i, p := range points {
		v, ok, err := DecodeBCD(b[i*it.Size:(i+1)*it.Size], it.Exp(), it.Signed)
		if err != nil {
			return nil, fmt.Errorf("%s (%s): %w", it.Name, p, err)
		}
		if ok {
			out[p] = v
		}
	}
	return out, nil
}

// DecodeDate reads YYMMDDWW sent WW DD MM YY (years 2000-2099). ok is
// false when the item is absent (all FF).
func DecodeDate(b []byte) (year int, month time.Month, day int, ok bool, err error) {
	if len(b) != 4 {
		return 0, 0, 0, false, fmt.Errorf("%w: date has %d bytes, want 4", ErrValue, len(b))
	}
	if b[0] == 0xFF && b[1] == 0xFF && b[2] == 0xFF && b[3] == 0xFF {
		return 0, 0, 0, false, nil
	}
	d, ok1 := bcdByte(b[1])
	m, ok2 := bcdByte(b[2])
	y, ok3 := bcdByte(b[3])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > daysIn(2000+y, time.Month(m)) {
		return 0, 0, 0, false, fmt.Errorf("%w: date % X is not a valid WW DD MM YY", ErrValue, b)
	}
	return 2000 + y, time.Month(m), d, true, nil
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// DecodeTime reads hhmmss sent ss mm hh. ok is false when absent (all FF).
func DecodeTime(b []byte) (hour, minute, sec int, ok bool, err error) {
	if len(b) != 3 {
		return 0, 0, 0, false, fmt.Errorf("%w: time has %d bytes, want 3", ErrValue, len(b))
	}
	if b[0] == 0xFF && b[1] == 0xFF && b[2] == 0xFF {
		return 0, 0, 0, false, nil
	}
	s, ok1 := bcdByte(b[0])
	mi, ok2 := bcdByte(b[1])
	h, ok3 := bcdByte(b[2])
	if !ok1 || !ok2 || !ok3 || h > 23 || mi > 59 || s > 59 {
		return 0, 0, 0, false, fmt.Errorf("%w: time % X is not a valid ss mm hh", ErrValue, b)
	}
	return h, mi, s, true, nil
}

// read is one transaction of a poll plan.
type read struct {
	item     Item
	fallback []Item // single items to read instead if a block is refused
}

// plan chooses the items that read the wanted points: a block when it
// covers two or more of them, single items otherwise, in catalogue order.
// clock is true when meter_time or clock_offset_s is wanted.
func plan(v Version, points []string) (reads []read, clock bool, err error) {
	want := map[string]bool{}
	for _, p := range points {
		switch p {
		case PointMeterTime, PointClockOffset:
			clock = true
			continue
		}
		want[p] = true
	}
	items := Items(v)
	covered := map[string]bool{}
	useBlock := map[uint32][]Item{}
	for _, it := range items {
		if !it.IsBlock() {
			continue
		}
		var singles []Item
		for _, p := range it.Points {
			if want[p] && !covered[p] {
				for _, s := range items {
					if !s.IsBlock() && slices.Equal(s.Points, []string{p}) {
						singles = append(singles, s)
					}
				}
			}
		}
		if len(singles) >= 2 {
			useBlock[it.DI] = singles
			for _, s := range singles {
				covered[s.Points[0]] = true
			}
		}
	}
	for _, it := range items {
		if it.IsBlock() {
			if fb, ok := useBlock[it.DI]; ok {
				reads = append(reads, read{item: it, fallback: fb})
			}
			continue
		}
		if len(it.Points) == 1 && want[it.Points[0]] && !covered[it.Points[0]] {
			reads = append(reads, read{item: it})
			covered[it.Points[0]] = true
		}
	}
	for _, p := range points {
		if p != PointMeterTime && p != PointClockOffset && !covered[p] {
			return nil, false, fmt.Errorf("%w: dlt645: point %q cannot be read in %s (known: %s)",
				drivers.ErrConfig, p, v, strings.Join(Points(v), ", "))
		}
	}
	return reads, clock, nil
}
