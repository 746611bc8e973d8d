package modbus

import (
	"errors"
	"fmt"

	"github.com/townlink/townlink/drivers"
)

// Errors about replies. Each wraps drivers.ErrFrame, so a line owner can
// classify them with errors.Is(err, drivers.ErrFrame) and still tell them
// apart.
var (
	// ErrCRC: the reply's CRC-16 does not match its bytes.
	ErrCRC = fmt.Errorf("%w: modbus: crc mismatch", drivers.ErrFrame)
	// ErrWrongUnit: a reply came from another unit id than the one asked.
	ErrWrongUnit = fmt.Errorf("%w: modbus: reply from wrong unit", drivers.ErrFrame)
	// ErrFunction: the reply's function code is not the request's.
	ErrFunction = fmt.Errorf("%w: modbus: reply function code mismatch", drivers.ErrFrame)
	// ErrLength: the reply is too short, too long or its byte count does not
	// match the quantity asked for.
	ErrLength = fmt.Errorf("%w: modbus: reply length mismatch", drivers.ErrFrame)
	// ErrEcho: a write reply does not echo the address, value or quantity
	// written.
	ErrEcho = fmt.Errorf("%w: modbus: write reply does not echo the request", drivers.ErrFrame)
	// ErrMBAP: a Modbus TCP header is malformed (protocol id, length).
	ErrMBAP = fmt.Errorf("%w: modbus: bad MBAP header", drivers.ErrFrame)
)

// Errors about requests and configuration.
var (
	// ErrRequest: a request breaks the protocol's limits (quantity, address
	// range, function code). Nothing was sent.
	ErrRequest = errors.New("modbus: invalid request")
	// ErrBroadcast: unit 0 is broadcast; only writes may be broadcast and
	// they get no reply.
	ErrBroadcast = errors.New("modbus: read sent to broadcast unit 0")
	// ErrClosed: the transport was closed.
	ErrClosed = errors.New("modbus: transport closed")
)

// Exception codes (Modbus Application Protocol V1.1b3 §7).
const (
	ExIllegalFunction        byte = 0x01
	ExIllegalDataAddress     byte = 0x02
	ExIllegalDataValue       byte = 0x03
	ExServerDeviceFailure    byte = 0x04
	ExAcknowledge            byte = 0x05
	ExServerDeviceBusy       byte = 0x06
	ExMemoryParityError      byte = 0x08
	ExGatewayPathUnavailable byte = 0x0A
	ExGatewayTargetFailed    byte = 0x0B
)

// Sentinels for exception codes, matched by errors.Is against an
// *ExceptionError with that code.
var (
	ErrIllegalFunction        = errors.New("modbus: illegal function")
	ErrIllegalDataAddress     = errors.New("modbus: illegal data address")
	ErrIllegalDataValue       = errors.New("modbus: illegal data value")
	ErrServerDeviceFailure    = errors.New("modbus: server device failure")
	ErrAcknowledge            = errors.New("modbus: acknowledge")
	ErrServerDeviceBusy       = errors.New("modbus: server device busy")
	ErrMemoryParityError      = errors.New("modbus: memory parity error")
	ErrGatewayPathUnavailable = errors.New("modbus: gateway path unavailable")
	ErrGatewayTargetFailed    = errors.New("modbus: gateway target device failed to respond")
	// ErrException matches every *ExceptionError, whatever its code.
	ErrException = errors.New("modbus: exception reply")
)

func exceptionSentinel(code byte) error {
	switch code {
	case ExIllegalFunction:
		return ErrIllegalFunction
	case ExIllegalDataAddress:
		return ErrIllegalDataAddress
	case ExIllegalDataValue:
		return ErrIllegalDataValue
	case ExServerDeviceFailure:
		return ErrServerDeviceFailure
	case ExAcknowledge:
		return ErrAcknowledge
	case ExServerDeviceBusy:
		return ErrServerDeviceBusy
	case ExMemoryParityError:
		return ErrMemoryParityError
	case ExGatewayPathUnavailable:
		return ErrGatewayPathUnavailable
	case ExGatewayTargetFailed:
		return ErrGatewayTargetFailed
	}
	return nil
}

// ExceptionError is an exception reply: the device understood the request
// and refused it. Function is the request's function code (without 0x80).
type ExceptionError struct {
	Unit     byte
	Function byte
	Code     byte
}

func (e *ExceptionError) Error() string {
	name := "unknown exception code"
	if s := exceptionSentinel(e.Code); s != nil {
		name = s.Error()[len("modbus: "):]
	}
	return fmt.Sprintf("modbus: unit %d function %d: exception %d (%s)", e.Unit, e.Function, e.Code, name)
}

// Is makes errors.Is(err, ErrIllegalDataAddress) (and the other code
// sentinels, and ErrException) true for an exception with that code.
func (e *ExceptionError) Is(target error) bool {
	if target == ErrException {
		return true
	}
	s := exceptionSentinel(e.Code)
	return s != nil && s == target
}
