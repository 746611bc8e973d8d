package kiosk

import "errors"

// Errors. Every rejection is a *FieldError that unwraps to one of these.
var (
	// ErrMalformed: the payload is not one well-formed JSON object or CBOR
	// map (syntax, trailing data, duplicate keys, unsupported CBOR items).
	ErrMalformed = errors.New("kiosk: malformed message")
	// ErrSchema: a field is missing, of the wrong type or out of range.
	ErrSchema = errors.New("kiosk: schema violation")
	// ErrTooLarge: the payload is larger than Config.MaxPayload.
	ErrTooLarge = errors.New("kiosk: payload too large")
	// ErrUnknownEvent: the topic's event is not one this driver knows.
	ErrUnknownEvent = errors.New("kiosk: unknown event")
	// ErrWrongDevice: the envelope's device_id names another device; a
	// device may not speak for another.
	ErrWrongDevice = errors.New("kiosk: message for another device")
	// ErrPersonalData: the payload carries a raw citizen ID number (a key
	// such as id_card, or a value that is a valid PRC resident ID), or a
	// citizen_ref that is not a hash. The value is never echoed.
	ErrPersonalData = errors.New("kiosk: personal data refused")
)

// FieldError says why one message was refused: which device and event,
// which field (a dotted path, "" for the whole message), the value as
// received (shortened; "" when missing) and the reason. It unwraps to one
// of the package's sentinel errors.
type FieldError struct {
	Device string
	Event  string
	Field  string
	Value  string
	Reason string
	Err    error
}

func (e *FieldError) Error() string {
	s := "kiosk: " + e.Device + " " + e.Event + ": "
	switch {
	case e.Field == "":
	case e.Value == "":
		s += e.Field + ": "
	default:
		s += e.Field + " = " + e.Value + ": "
	}
	return s + e.Reason
}

// Unwrap returns the sentinel error.
func (e *FieldError) Unwrap() error { return e.Err }
