package recorder

import (
	"errors"

	"github.com/townlink/townlink/drivers/internal/fieldmsg"
)

// Errors. Every rejection is a *FieldError that unwraps to one of these.
var (
	// ErrMalformed: the payload is not one well-formed JSON object or CBOR
	// map (syntax, trailing data, duplicate keys, unsupported CBOR items).
	ErrMalformed = errors.New("recorder: malformed message")
	// ErrSchema: a field is missing, of the wrong type or out of range.
	ErrSchema = errors.New("recorder: schema violation")
	// ErrTooLarge: the payload is larger than Config.MaxPayload.
	ErrTooLarge = errors.New("recorder: payload too large")
	// ErrUnknownEvent: the topic's event is not one this driver knows.
	ErrUnknownEvent = errors.New("recorder: unknown event")
	// ErrWrongDevice: the envelope's device_id names another device; a
	// device may not speak for another.
	ErrWrongDevice = errors.New("recorder: message for another device")
)

// FieldError says why one message was refused: which device and event,
// which field (a dotted path, "" for the whole message), the value as
// received (shortened; "" when missing) and the reason. It unwraps to one
// of the package's sentinel errors. Its fields are Device, Event, Field,
// Value, Reason and Err; it is this package's own type (the shared
// definition is instantiated with this package's driver type).
type FieldError = fieldmsg.FieldError[driver]

// driver ties the shared message code to this package: the prefix of its
// error texts and its sentinels.
type driver struct{}

func (driver) Name() string       { return "recorder" }
func (driver) Schema() error      { return ErrSchema }
func (driver) WrongDevice() error { return ErrWrongDevice }

// fields reads the typed fields of one message object.
type fields = fieldmsg.Fields[driver]
