package recorder

import (
	"errors"

	"github.com/townlink/townlink/drivers/internal/fieldmsg"
)

// Errors. Every rejection is a *FieldError that unwraps to exactly one of
// these, and its Error() is a short text naming the device, the event, the
// field, the value (shortened) and the reason: fit to be stored as the
// reason the message was rejected. Every one of them means the message
// itself is wrong (garbage for this driver, never a passing condition):
// decoding it again gives the same error, so the gateway keeps it as a
// rejected record, raw bytes and reason, rather than refusing the
// acknowledgement (a device would resend it forever). Decode has no other
// errors: it does no I/O and has no size limit.
var (
	// ErrMalformed: the payload is not one well-formed JSON object or CBOR
	// map (syntax, trailing data, duplicate keys, unsupported CBOR items).
	ErrMalformed = errors.New("recorder: malformed message")
	// ErrSchema: a field is missing, of the wrong type or out of range.
	ErrSchema = errors.New("recorder: schema violation")
	// ErrUnknownEvent: the topic's event is not one this driver knows
	// (Events lists them); the error names the event, quoted and shortened.
	ErrUnknownEvent = errors.New("recorder: unknown event")
	// ErrWrongDevice: the envelope's device_id names another device; a
	// device may not speak for another. A rejected record of it belongs to
	// the device that sent it (the MQTT credentials), never to the one it
	// names.
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
