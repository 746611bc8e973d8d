package commands

import (
	"fmt"
	"math"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/modbus"
	"github.com/townlink/townlink/uplink/wire"
)

// driverValue maps the value of a set command to a driver value. Decimal
// exponents are bounded (modbus.MaxWriteExp) here, before the line is
// taken; the driver checks magnitude against the register's type and
// scale before any I/O.
func driverValue(v wire.Value) (drivers.Value, error) {
	switch v.Kind() {
	case wire.KindDecimal:
		m, e, _ := v.Decimal()
		if e > modbus.MaxWriteExp || e < -modbus.MaxWriteExp {
			return drivers.Value{}, fmt.Errorf("value %de%d: decimal exponent outside ±%d", m, e, modbus.MaxWriteExp)
		}
		return drivers.Dec(m, e), nil
	case wire.KindInt:
		i, _ := v.AsInt()
		return drivers.Int(i), nil
	case wire.KindBool:
		b, _ := v.AsBool()
		return drivers.Bool(b), nil
	case wire.KindFloat:
		f, _ := v.AsFloat()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return drivers.Value{}, fmt.Errorf("value %v cannot be written to an output", f)
		}
		return drivers.Float(f), nil
	}
	return drivers.Value{}, fmt.Errorf("a %s value cannot be written to an output", v.Kind())
}
