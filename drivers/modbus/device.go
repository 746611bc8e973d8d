package modbus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"

	"github.com/townlink/townlink/drivers"
)

// Point is one named value in a device's register map. Address is the
// protocol address (vendor "register 40001" is Holding address 0).
type Point struct {
	Name    string
	Table   Table
	Address uint16
	Type    Type
	Order   Order
	// Scale and Offset give value = raw × Scale + Offset, exactly, for
	// integer types. The zero Value means 1 and 0; when both are unset an
	// integer point is a drivers.Int. Floats are scaled in float64 when
	// set (floats are never billing registers). Not allowed on Bool points.
	Scale, Offset drivers.Value
}

func (p Point) width() int {
	if p.Table.bits() {
		return 1
	}
	return p.Type.Registers()
}

func (p Point) scaled() bool {
	return p.Scale.Kind() != drivers.KindNone || p.Offset.Kind() != drivers.KindNone
}

// Config is one Modbus device: its unit id and register map.
type Config struct {
	Device string // device id in readings and errors
	Unit   byte   // 1..247 (255 is accepted for Modbus TCP servers)
	Points []Point
	Class  drivers.Class
	// MaxGap is how many unused registers (or bits) one read may span to
	// join two points into one request. 0 (the default) reads only
	// contiguous points together: many devices answer "illegal data
	// address" when a read covers a hole in their map.
	MaxGap uint16
}

// Validate checks the configuration. Errors wrap drivers.ErrConfig and name
// the device and point.
func (c Config) Validate() error {
	if c.Device == "" {
		return fmt.Errorf("%w: modbus: device id is empty", drivers.ErrConfig)
	}
	if c.Unit == 0 || (c.Unit > 247 && c.Unit != 255) {
		return fmt.Errorf("%w: modbus %s: unit %d (want 1..247, or 255 for a TCP server; 0 is broadcast)", drivers.ErrConfig, c.Device, c.Unit)
	}
	if c.Class > drivers.Evidence {
		return fmt.Errorf("%w: modbus %s: class %d", drivers.ErrConfig, c.Device, c.Class)
	}
	if len(c.Points) == 0 {
		return fmt.Errorf("%w: modbus %s: no points", drivers.ErrConfig, c.Device)
	}
	seen := make(map[string]bool, len(c.Points))
	for i, p := range c.Points {
		if err := p.validate(); err != nil {
			return fmt.Errorf("%w: modbus %s: point %d %q: %w", drivers.ErrConfig, c.Device, i, p.Name, err)
		}
		if seen[p.Name] {
			return fmt.Errorf("%w: modbus %s: point %q defined twice", drivers.ErrConfig, c.Device, p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}

func (p Point) validate() error {
	if p.Name == "" {
		return errors.New("empty name")
	}
	if p.Table > Discrete {
		return fmt.Errorf("table %d", p.Table)
	}
	if p.Type > Bool {
		return fmt.Errorf("type %d", p.Type)
	}
	if p.Order > DCBA {
		return fmt.Errorf("order %d", p.Order)
	}
	if p.Table.bits() {
		if p.Type != Bool && p.Type != 0 {
			return fmt.Errorf("a %s point is bool, not %s", p.Table, p.Type)
		}
		if p.scaled() {
			return fmt.Errorf("a %s point cannot have scale or offset", p.Table)
		}
	} else if p.Type == Bool {
		return fmt.Errorf("bool is for coil and discrete points, not %s registers", p.Table)
	}
	if int(p.Address)+p.width() > 0x10000 {
		return fmt.Errorf("address %d + %d registers passes 65535", p.Address, p.width())
	}
	for _, v := range []struct {
		name string
		v    drivers.Value
	}{{"scale", p.Scale}, {"offset", p.Offset}} {
		switch v.v.Kind() {
		case drivers.KindNone, drivers.KindDecimal, drivers.KindInt:
		default:
			return fmt.Errorf("%s %s is not a decimal", v.name, v.v)
		}
	}
	if k := p.Scale.Kind(); k != drivers.KindNone && p.Scale.Rat().Sign() == 0 {
		return errors.New("scale is zero")
	}
	return nil
}

// group is one read request and the points it serves.
type group struct {
	table  Table
	start  uint16
	qty    uint16
	points []int // indexes into Device.points
}

func (g group) request() Request {
	switch g.table {
	case Input:
		return ReadInputRegisters(g.start, g.qty)
	case Coil:
		return ReadCoils(g.start, g.qty)
	case Discrete:
		return ReadDiscreteInputs(g.start, g.qty)
	}
	return ReadHoldingRegisters(g.start, g.qty)
}

// Device is a Modbus device read through its register map.
type Device struct {
	name   string
	unit   byte
	class  drivers.Class
	points []Point
	byName map[string]int
	groups []group
	t      Transport
}

var _ drivers.Poller = (*Device)(nil)

// New checks c and plans the reads: points of one table are joined into
// as few requests as the quantity limits (and MaxGap) allow. It does no I/O.
func New(c Config, t Transport) (*Device, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("%w: modbus %s: no transport", drivers.ErrConfig, c.Device)
	}
	d := &Device{
		name:   c.Device,
		unit:   c.Unit,
		class:  c.Class,
		points: slices.Clone(c.Points),
		byName: make(map[string]int, len(c.Points)),
		t:      t,
	}
	for i, p := range d.points {
		d.byName[p.Name] = i
	}
	d.groups = plan(d.points, int(c.MaxGap))
	return d, nil
}

func plan(points []Point, maxGap int) []group {
	idx := make([]int, len(points))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		pa, pb := points[a], points[b]
		return cmp.Or(cmp.Compare(pa.Table, pb.Table), cmp.Compare(pa.Address, pb.Address))
	})
	var gs []group
	var end int // one past the last register of the current group
	for _, i := range idx {
		p := points[i]
		a, w := int(p.Address), p.width()
		limit := MaxReadRegisters
		if p.Table.bits() {
			limit = MaxReadBits
		}
		if n := len(gs); n > 0 {
			g := &gs[n-1]
			if g.table == p.Table && a <= end+maxGap && max(end, a+w)-int(g.start) <= limit {
				end = max(end, a+w)
				g.qty = uint16(end - int(g.start))
				g.points = append(g.points, i)
				continue
			}
		}
		gs = append(gs, group{table: p.Table, start: p.Address, qty: uint16(w), points: []int{i}})
		end = a + w
	}
	return gs
}

// Requests returns the reads one Poll makes, in order.
func (d *Device) Requests() []Request {
	rs := make([]Request, len(d.groups))
	for i, g := range d.groups {
		rs[i] = g.request()
	}
	return rs
}

// Poll reads every point and appends one Reading (Device, Class, all
// points read) to dst. When some requests fail it still returns the
// reading with what succeeded, plus an error per failed request naming the
// device, table and addresses and wrapping drivers.ErrTimeout,
// drivers.ErrFrame or *ExceptionError. After a timeout the remaining
// requests are skipped: a silent device must not hold the line. When
// nothing could be read, no reading is appended.
func (d *Device) Poll(ctx context.Context, dst []drivers.Reading) ([]drivers.Reading, error) {
	vals := make(map[string]drivers.Value, len(d.points))
	var errs []error
	for gi, g := range d.groups {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("modbus %s unit %d: %w", d.name, d.unit, err))
			break
		}
		rep, err := Do(ctx, d.t, d.unit, g.request())
		if err != nil {
			err = fmt.Errorf("modbus %s unit %d %s %d..%d: %w", d.name, d.unit, g.table, g.start, int(g.start)+int(g.qty)-1, err)
			errs = append(errs, err)
			if errors.Is(err, drivers.ErrTimeout) || ctx.Err() != nil {
				if left := len(d.groups) - gi - 1; left > 0 {
					errs = append(errs, fmt.Errorf("modbus %s unit %d: %d more requests skipped", d.name, d.unit, left))
				}
				break
			}
			continue
		}
		for _, pi := range g.points {
			p := d.points[pi]
			off := int(p.Address - g.start)
			var v drivers.Value
			var err error
			if g.table.bits() {
				v = drivers.Bool(rep.Bits[off])
			} else {
				v, err = decodePoint(p, rep.Registers[off:off+p.width()])
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("modbus %s unit %d %s %d point %q: %w", d.name, d.unit, p.Table, p.Address, p.Name, err))
				continue
			}
			vals[p.Name] = v
		}
	}
	if len(vals) > 0 {
		dst = append(dst, drivers.Reading{Device: d.name, Class: d.class, Values: vals})
	}
	return dst, errors.Join(errs...)
}

func decodePoint(p Point, regs []uint16) (drivers.Value, error) {
	i, u, f, err := DecodeRegisters(regs, p.Type, p.Order)
	if err != nil {
		return drivers.Value{}, err
	}
	if p.Type == Float32 || p.Type == Float64 {
		if p.scaled() {
			f = f*ratFloat(p.Scale, 1) + ratFloat(p.Offset, 0)
		}
		return drivers.Float(f), nil
	}
	if !signed(p.Type) {
		if u > math.MaxInt64 {
			return drivers.Value{}, fmt.Errorf("%w: %d does not fit in int64", drivers.ErrOverflow, u)
		}
		i = int64(u)
	}
	if !p.scaled() {
		return drivers.Int(i), nil
	}
	return drivers.Scale(i, p.Scale, p.Offset)
}

func ratFloat(v drivers.Value, def float64) float64 {
	r := v.Rat()
	if r == nil {
		return def
	}
	f, _ := r.Float64()
	return f
}

// WriteCoil sets one coil (FC 5).
func (d *Device) WriteCoil(ctx context.Context, addr uint16, on bool) error {
	return d.write(ctx, WriteSingleCoil(addr, on), Coil)
}

// WriteCoils sets consecutive coils from addr (FC 15).
func (d *Device) WriteCoils(ctx context.Context, addr uint16, bits []bool) error {
	return d.write(ctx, WriteMultipleCoils(addr, bits), Coil)
}

// WriteRegister sets one holding register (FC 6).
func (d *Device) WriteRegister(ctx context.Context, addr, v uint16) error {
	return d.write(ctx, WriteSingleRegister(addr, v), Holding)
}

// WriteRegisters sets consecutive holding registers from addr (FC 16).
func (d *Device) WriteRegisters(ctx context.Context, addr uint16, vals []uint16) error {
	return d.write(ctx, WriteMultipleRegisters(addr, vals), Holding)
}

func (d *Device) write(ctx context.Context, req Request, t Table) error {
	if _, err := Do(ctx, d.t, d.unit, req); err != nil {
		return fmt.Errorf("modbus %s unit %d write %s %d..%d: %w", d.name, d.unit, t, req.Address, int(req.Address)+max(int(req.Quantity), 1)-1, err)
	}
	return nil
}

// ErrNotWritable: WritePoint was asked to write an unknown point, a point
// of a read-only table, or a value that does not map onto the point.
var ErrNotWritable = errors.New("modbus: point cannot take this value")

// WritePoint writes v to a Holding or Coil point by name, undoing its
// scale, offset, type and order: a decimal must map to an exact integer
// raw value in the type's range. One register is written with FC 6,
// several with FC 16, a coil with FC 5.
func (d *Device) WritePoint(ctx context.Context, name string, v drivers.Value) error {
	pi, ok := d.byName[name]
	if !ok {
		return fmt.Errorf("%w: modbus %s: no point %q", ErrNotWritable, d.name, name)
	}
	p := d.points[pi]
	switch p.Table {
	case Coil:
		b, ok := v.AsBool()
		if !ok {
			return fmt.Errorf("%w: modbus %s point %q is a coil, value %s is not a bool", ErrNotWritable, d.name, name, v)
		}
		return d.WriteCoil(ctx, p.Address, b)
	case Holding:
	default:
		return fmt.Errorf("%w: modbus %s point %q is in the read-only %s table", ErrNotWritable, d.name, name, p.Table)
	}
	regs, err := encodePoint(p, v)
	if err != nil {
		return fmt.Errorf("%w: modbus %s point %q: %w", ErrNotWritable, d.name, name, err)
	}
	if len(regs) == 1 {
		return d.WriteRegister(ctx, p.Address, regs[0])
	}
	return d.WriteRegisters(ctx, p.Address, regs)
}

// MaxWriteExp bounds the decimal exponent of a value WritePoint takes: no
// register holds more than 20 decimal digits, and a value of 10^(2^31)
// would take hours to compute while the caller holds the line.
const MaxWriteExp = 20

func encodePoint(p Point, v drivers.Value) ([]uint16, error) {
	if m, e, ok := v.Decimal(); ok && (e > MaxWriteExp || e < -MaxWriteExp) {
		// Not formatted with %s: that would write out every digit.
		return nil, fmt.Errorf("value %de%d: decimal exponent outside ±%d", m, e, MaxWriteExp)
	}
	if p.Type == Float32 || p.Type == Float64 {
		var f float64
		if x, ok := v.AsFloat(); ok {
			f = x
		} else if r := v.Rat(); r != nil {
			f, _ = r.Float64()
		} else {
			return nil, fmt.Errorf("value %s is not a number", v)
		}
		if p.scaled() {
			f = (f - ratFloat(p.Offset, 0)) / ratFloat(p.Scale, 1)
		}
		return EncodeRegisters(p.Type, p.Order, 0, 0, f)
	}
	r := v.Rat()
	if r == nil {
		return nil, fmt.Errorf("value %s is not an exact number", v)
	}
	if off := p.Offset.Rat(); off != nil {
		r.Sub(r, off)
	}
	if sc := p.Scale.Rat(); sc != nil {
		r.Quo(r, sc)
	}
	if !r.IsInt() {
		return nil, fmt.Errorf("value %s is not a whole multiple of scale %s", v, p.Scale)
	}
	n := r.Num()
	if signed(p.Type) {
		if !n.IsInt64() {
			return nil, fmt.Errorf("raw value %s does not fit %s", n, p.Type)
		}
		return EncodeRegisters(p.Type, p.Order, n.Int64(), 0, 0)
	}
	if n.Sign() < 0 || n.Cmp(new(big.Int).SetUint64(math.MaxUint64)) > 0 {
		return nil, fmt.Errorf("raw value %s does not fit %s", n, p.Type)
	}
	return EncodeRegisters(p.Type, p.Order, 0, n.Uint64(), 0)
}
