package modbus

import (
	"context"
	"errors"
	"fmt"
)

// Transport carries one request PDU to a unit and brings back its reply
// PDU. RTU (serial, CRC) and TCP (MBAP) implement it; a Device does not
// care which.
type Transport interface {
	// Do sends pdu (function code and data) to unit and returns the reply
	// PDU. An exception reply is returned as *ExceptionError; a reply whose
	// function code is neither the request's nor its exception is
	// ErrFunction. On RTU, unit 0 broadcasts a write and returns (nil, nil).
	Do(ctx context.Context, unit byte, pdu []byte) ([]byte, error)
}

// Do encodes req, sends it through t to unit and decodes the reply. A
// broadcast (RTU unit 0) returns a zero Reply and nil.
func Do(ctx context.Context, t Transport, unit byte, req Request) (Reply, error) {
	pdu, err := req.AppendPDU(make([]byte, 0, 8))
	if err != nil {
		return Reply{}, err
	}
	if unit == 0 && !req.IsWrite() {
		return Reply{}, fmt.Errorf("%w (%s)", ErrBroadcast, req)
	}
	rep, err := t.Do(ctx, unit, pdu)
	if err != nil {
		return Reply{}, err
	}
	if rep == nil && unit == 0 {
		return Reply{}, nil
	}
	r, err := req.DecodeReply(rep)
	var ex *ExceptionError
	if errors.As(err, &ex) {
		ex.Unit = unit // a transport that passed the exception PDU through
	}
	return r, err
}

// checkReply turns an exception PDU into *ExceptionError and rejects a
// reply to another function.
func checkReply(unit, fc byte, pdu []byte) error {
	if len(pdu) == 0 {
		return fmt.Errorf("%w: empty reply", ErrLength)
	}
	if pdu[0] == fc|0x80 {
		if len(pdu) != 2 {
			return fmt.Errorf("%w: exception reply of %d bytes (want 2)", ErrLength, len(pdu))
		}
		return &ExceptionError{Unit: unit, Function: fc, Code: pdu[1]}
	}
	if pdu[0] != fc {
		return fmt.Errorf("%w: got %d, want %d", ErrFunction, pdu[0], fc)
	}
	return nil
}
