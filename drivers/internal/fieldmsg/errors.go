package fieldmsg

// Driver names the driver package a message belongs to. Each driver
// implements it on an unexported empty struct and instantiates the generic
// types below with it, so that its FieldError stays its own type (errors.As
// for a kiosk.FieldError never matches a recorder's) and its error texts
// keep its own prefix.
type Driver interface {
	// Name is the prefix of every error text ("kiosk").
	Name() string
	// Schema is the driver's sentinel for a missing field, a wrong type or
	// a value out of range: the typed readers of Fields wrap it.
	Schema() error
	// WrongDevice is the driver's sentinel for a message whose device_id
	// names another device (see ReadEnvelope).
	WrongDevice() error
}

// FieldError says why one message was refused: which device and event,
// which field (a dotted path, "" for the whole message), the value as
// received (shortened; "" when missing) and the reason. It unwraps to one
// of the driver's sentinel errors.
type FieldError[D Driver] struct {
	Device string
	Event  string
	Field  string
	Value  string
	Reason string
	Err    error
}

// Error reads "<driver>: <device> <event>: [<field> [= <value>]: ]<reason>",
// event and field shortened (see Clip): a short text, fit to be stored as
// the reason a message was rejected.
func (e *FieldError[D]) Error() string {
	var d D
	s := d.Name() + ": " + e.Device + " " + Clip(e.Event, 80) + ": "
	field := Clip(e.Field, 120) // a path may hold keys of the message
	switch {
	case field == "":
	case e.Value == "":
		s += field + ": "
	default:
		s += field + " = " + e.Value + ": "
	}
	return s + e.Reason
}

// Unwrap returns the sentinel error.
func (e *FieldError[D]) Unwrap() error { return e.Err }
