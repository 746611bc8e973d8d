package kiosk

import (
	"errors"

	"github.com/townlink/townlink/drivers/internal/fieldmsg"
)

// Errors. Every rejection is a *FieldError that unwraps to exactly one of
// these, and its Error() is a short text naming the device, the event, the
// field, the value (shortened; never for ErrPersonalData) and the reason:
// fit to be stored as the reason the message was rejected. Every one of
// them means the message itself is wrong: decoding it again gives the same
// error (a refused message leaves the metrics state untouched), so the
// gateway keeps it as a rejected record rather than refusing the
// acknowledgement (a device would resend it forever) — with the raw bytes
// for all but ErrPersonalData, whose payload must not be stored or
// forwarded at all (keep the reason only). Decode has no other errors: it
// does no I/O and has no size limit.
var (
	// ErrMalformed: the payload is not one well-formed JSON object or CBOR
	// map (syntax, trailing data, duplicate keys, unsupported CBOR items).
	ErrMalformed = errors.New("kiosk: malformed message")
	// ErrSchema: a field is missing, of the wrong type or out of range.
	ErrSchema = errors.New("kiosk: schema violation")
	// ErrUnknownEvent: the topic's event is not one this driver knows
	// (Events lists them); the error names the event, quoted and shortened.
	ErrUnknownEvent = errors.New("kiosk: unknown event")
	// ErrWrongDevice: the envelope's device_id names another device; a
	// device may not speak for another. A rejected record of it belongs to
	// the device that sent it (the MQTT credentials), never to the one it
	// names.
	ErrWrongDevice = errors.New("kiosk: message for another device")
	// ErrPersonalData: the payload carries a raw citizen ID number (a key
	// such as id_card, or a value that is a valid PRC resident ID), or a
	// citizen_ref that is not a hash. The value is never echoed, and the
	// payload must not be kept: a rejected record of it has no raw bytes.
	ErrPersonalData = errors.New("kiosk: personal data refused")
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

func (driver) Name() string       { return "kiosk" }
func (driver) Schema() error      { return ErrSchema }
func (driver) WrongDevice() error { return ErrWrongDevice }

// fields reads the typed fields of one message object.
type fields = fieldmsg.Fields[driver]
