package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/townlink/townlink/drivers"
)

// MBAPHeaderLen is the size of the Modbus TCP header: TID(2) PID(2) LEN(2) UNIT(1).
const MBAPHeaderLen = 7

// AppendMBAP appends a Modbus TCP ADU (MBAP header and pdu) to b.
func AppendMBAP(b []byte, tid uint16, unit byte, pdu []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, tid)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pdu)+1))
	b = append(b, unit)
	return append(b, pdu...)
}

// ParseMBAP parses a 7-byte MBAP header. pduLen is the number of PDU bytes
// that follow it. A protocol id other than 0 or a length outside 2..254
// wraps ErrMBAP.
func ParseMBAP(h []byte) (tid uint16, unit byte, pduLen int, err error) {
	if len(h) < MBAPHeaderLen {
		return 0, 0, 0, fmt.Errorf("%w: header of %d bytes (want %d)", ErrMBAP, len(h), MBAPHeaderLen)
	}
	tid = binary.BigEndian.Uint16(h)
	if pid := binary.BigEndian.Uint16(h[2:]); pid != 0 {
		return 0, 0, 0, fmt.Errorf("%w: protocol id %d (want 0)", ErrMBAP, pid)
	}
	l := int(binary.BigEndian.Uint16(h[4:]))
	if l < 2 || l > MaxPDU+1 {
		return 0, 0, 0, fmt.Errorf("%w: length %d (want 2..%d)", ErrMBAP, l, MaxPDU+1)
	}
	return tid, h[6], l - 1, nil
}

// TCP is Modbus TCP (MBAP framing, no CRC) over a stream connection. It
// dials lazily, matches replies to requests by transaction id (a late
// reply to an earlier, timed-out request is dropped), and closes the
// connection after any failure so the next request starts clean.
//
// Unit 0 is sent like any other unit: a TCP server answers it (the spec
// uses 0 or 255 to address the server itself).
type TCP struct {
	mu      sync.Mutex
	dial    func(ctx context.Context) (net.Conn, error)
	timeout time.Duration
	conn    net.Conn
	tid     uint16
	closed  bool
}

var _ Transport = (*TCP)(nil)

// NewTCP returns a TCP transport that opens its connection with dial
// (e.g. a net.Dialer's DialContext to "host:502"). timeout bounds each
// exchange, dial included (<= 0: DefaultTimeout). It does no I/O.
func NewTCP(dial func(ctx context.Context) (net.Conn, error), timeout time.Duration) *TCP {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &TCP{dial: dial, timeout: timeout}
}

// Close closes the connection; later calls to Do fail with ErrClosed.
func (t *TCP) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	return t.drop()
}

func (t *TCP) drop() error {
	if t.conn == nil {
		return nil
	}
	err := t.conn.Close()
	t.conn = nil
	return err
}

// Do implements Transport.
func (t *TCP) Do(ctx context.Context, unit byte, pdu []byte) ([]byte, error) {
	if len(pdu) == 0 || len(pdu) > MaxPDU {
		return nil, fmt.Errorf("%w: pdu of %d bytes (want 1..%d)", ErrRequest, len(pdu), MaxPDU)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	deadline := time.Now().Add(t.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if t.conn == nil {
		dctx, cancel := context.WithDeadline(ctx, deadline)
		c, err := t.dial(dctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("modbus tcp: dial: %w", err)
		}
		t.conn = c
	}
	rep, err := t.exchange(ctx, t.conn, deadline, unit, pdu)
	var ex *ExceptionError
	if err != nil && !errors.As(err, &ex) {
		_ = t.drop() // the stream may be out of step; the exchange's error is the one to report
	}
	return rep, err
}

func (t *TCP) exchange(ctx context.Context, c net.Conn, deadline time.Time, unit byte, pdu []byte) ([]byte, error) {
	if err := c.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("modbus tcp: %w", err)
	}
	// Cancelling ctx unblocks the read or write at once.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	t.tid++
	tid := t.tid
	if _, err := c.Write(AppendMBAP(make([]byte, 0, MBAPHeaderLen+len(pdu)), tid, unit, pdu)); err != nil {
		return nil, t.ioError(ctx, "write", err)
	}
	var hdr [MBAPHeaderLen]byte
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return nil, t.ioError(ctx, "read", err)
		}
		rtid, runit, n, err := ParseMBAP(hdr[:])
		if err != nil {
			return nil, fmt.Errorf("%w (% X)", err, hdr)
		}
		rep := make([]byte, n)
		if _, err := io.ReadFull(c, rep); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: modbus tcp: reply cut off: %v", drivers.ErrFrame, err)
			}
			return nil, t.ioError(ctx, "read", err)
		}
		if rtid != tid {
			continue // a late reply to an earlier request
		}
		if runit != unit {
			return nil, fmt.Errorf("%w: got unit %d, want %d", ErrWrongUnit, runit, unit)
		}
		if err := checkReply(unit, pdu[0], rep); err != nil {
			return nil, err
		}
		return rep, nil
	}
}

func (t *TCP) ioError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded // ctx's deadline, not ours, ended the wait
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: modbus tcp: %s: no reply in %v", drivers.ErrTimeout, op, t.timeout)
	}
	return fmt.Errorf("modbus tcp: %s: %w", op, err)
}
