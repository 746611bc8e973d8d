package modbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/serialio"
	"github.com/townlink/townlink/hardware"
)

// Defaults of the RTU transport.
const (
	DefaultTimeout        = time.Second            // response timeout (field practice: 0.5-1 s)
	DefaultBroadcastDelay = 100 * time.Millisecond // turnaround after a broadcast (spec: 100-200 ms)
)

// RTU is Modbus RTU over one serial line: ADDR FC DATA CRC16. It
// serialises its callers; the line owner decides the order of devices.
type RTU struct {
	mu             sync.Mutex
	port           hardware.Port
	timeout        time.Duration
	retries        int
	broadcastDelay time.Duration
}

var _ Transport = (*RTU)(nil)

// NewRTU returns an RTU transport on port. timeout bounds each reply
// (<= 0: DefaultTimeout); retries is how many more times a request is sent
// after a timeout or a garbled reply (exceptions are not retried): 0 means
// none, as everywhere (drivers.CheckRetries; a negative count is taken as
// none). It does no I/O.
func NewRTU(port hardware.Port, timeout time.Duration, retries int) *RTU {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &RTU{port: port, timeout: timeout, retries: max(retries, 0), broadcastDelay: DefaultBroadcastDelay}
}

// SetBroadcastDelay sets how long Do waits after a broadcast before it
// returns, so slaves can act on it before the next request (default
// DefaultBroadcastDelay; 0 disables it).
func (t *RTU) SetBroadcastDelay(d time.Duration) {
	t.mu.Lock()
	t.broadcastDelay = max(d, 0)
	t.mu.Unlock()
}

// Do implements Transport.
func (t *RTU) Do(ctx context.Context, unit byte, pdu []byte) ([]byte, error) {
	if len(pdu) == 0 || len(pdu) > MaxPDU {
		return nil, fmt.Errorf("%w: pdu of %d bytes (want 1..%d)", ErrRequest, len(pdu), MaxPDU)
	}
	if unit > 247 {
		return nil, fmt.Errorf("%w: unit %d (RTU addresses are 1..247, 0 = broadcast)", ErrRequest, unit)
	}
	adu := make([]byte, 0, len(pdu)+3)
	adu = append(adu, unit)
	adu = append(adu, pdu...)
	adu = AppendCRC(adu)

	t.mu.Lock()
	defer t.mu.Unlock()
	if unit == 0 {
		if _, err := serialio.Transact(ctx, t.port, adu, t.timeout, nil); err != nil {
			return nil, err
		}
		return nil, sleep(ctx, t.broadcastDelay)
	}
	var err error
	for range t.retries + 1 {
		var frame []byte
		frame, err = serialio.Transact(ctx, t.port, adu, t.timeout, SplitRTU)
		if err == nil {
			if frame[0] != unit {
				err = fmt.Errorf("%w: got unit %d, want %d (% X)", ErrWrongUnit, frame[0], unit, frame)
			} else {
				rep := frame[1 : len(frame)-2]
				if err = checkReply(unit, pdu[0], rep); err == nil {
					return rep, nil
				}
			}
		}
		// Retry only what a second try can fix: silence and garbled or
		// misaddressed replies. Exceptions and I/O errors are final.
		if ctx.Err() != nil || !(errors.Is(err, drivers.ErrTimeout) || errors.Is(err, drivers.ErrFrame)) {
			return nil, err
		}
	}
	return nil, err
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// SplitRTU is the serialio.SplitFunc of RTU replies. A PTY (or a USB
// adapter's buffering) hides the t3.5 silence that ends a frame on the
// wire, so the length comes from the header: an exception is 5 bytes,
// FC 1-4 are 3 + byte count + 2, FC 5/6/15/16 are 8. Leading 0x00 bytes
// (a reply never comes from broadcast unit 0; transceivers often emit one
// on bus turnaround) are skipped. A CRC mismatch wraps ErrCRC.
func SplitRTU(buf []byte) (skip, n int, err error) {
	for skip < len(buf) && buf[skip] == 0 {
		skip++
	}
	if skip > 0 {
		return skip, 0, nil
	}
	if len(buf) < 2 {
		return 0, 0, nil
	}
	fc := buf[1]
	switch {
	case fc&0x80 != 0:
		n = 5
	case fc >= FuncReadCoils && fc <= FuncReadInputRegisters:
		if len(buf) < 3 {
			return 0, 0, nil
		}
		bc := int(buf[2])
		if bc == 0 || bc > 2*MaxReadRegisters {
			return 0, 0, fmt.Errorf("%w: function %d byte count %d (want 1..%d)", ErrLength, fc, bc, 2*MaxReadRegisters)
		}
		n = 3 + bc + 2
	case fc == FuncWriteSingleCoil, fc == FuncWriteSingleRegister, fc == FuncWriteMultipleCoils, fc == FuncWriteMultipleRegisters:
		n = 8
	default:
		return 0, 0, fmt.Errorf("%w: unsupported function code %d in reply", ErrFunction, fc)
	}
	if len(buf) < n {
		return 0, 0, nil
	}
	got := uint16(buf[n-2]) | uint16(buf[n-1])<<8
	if want := CRC16(buf[:n-2]); got != want {
		return 0, 0, fmt.Errorf("%w: frame crc %04X, computed %04X", ErrCRC, got, want)
	}
	return 0, n, nil
}
