// Package serialio is the request/reply loop every serial driver uses: it
// drops stale input, writes a request and reads one frame found by the
// protocol's split function, before a deadline.
package serialio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/hardware"
)

// SplitFunc looks at the bytes received so far. It returns:
//   - skip > 0: drop that many leading bytes (preamble, noise) and look again;
//   - n > 0: buf[:n] is one complete frame;
//   - both 0: read more;
//   - err != nil: what is buffered can never become a valid frame.
type SplitFunc func(buf []byte) (skip, n int, err error)

// maxFrame bounds what Transact buffers while waiting for a frame.
const maxFrame = 4096

// pollSlice is how often a blocked read wakes up to check ctx.
const pollSlice = 100 * time.Millisecond

// Transact drops stale input (a late reply to an earlier request), writes
// req, then reads until split finds one frame, the timeout passes or ctx
// ends. A device that sent nothing gives drivers.ErrTimeout; a reply cut off or
// garbled gives drivers.ErrFrame. The returned frame is a fresh slice.
func Transact(ctx context.Context, p hardware.Port, req []byte, timeout time.Duration, split SplitFunc) ([]byte, error) {
	if err := p.Flush(); err != nil {
		return nil, fmt.Errorf("flush: %w", err)
	}
	if _, err := p.Write(req); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	if split == nil {
		return nil, nil
	}
	return ReadFrame(ctx, p, time.Now().Add(timeout), split)
}

// ReadFrame reads one frame (see SplitFunc) before deadline.
func ReadFrame(ctx context.Context, p hardware.Port, deadline time.Time, split SplitFunc) ([]byte, error) {
	var buf []byte
	chunk := make([]byte, 256)
	skipped := 0
	for {
		for len(buf) > 0 {
			skip, n, err := split(buf)
			if err != nil {
				return nil, fmt.Errorf("%w: %w (% X)", drivers.ErrFrame, err, buf)
			}
			if n > 0 {
				return append([]byte(nil), buf[:n]...), nil
			}
			if skip <= 0 {
				break
			}
			skip = min(skip, len(buf))
			skipped += skip
			buf = buf[skip:]
		}
		if len(buf) > maxFrame {
			return nil, fmt.Errorf("%w: no frame in %d bytes", drivers.ErrFrame, len(buf))
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			if len(buf) > 0 {
				return nil, fmt.Errorf("%w: reply cut off after %d bytes (% X)", drivers.ErrFrame, len(buf), buf)
			}
			if skipped > 0 {
				return nil, fmt.Errorf("%w: %d bytes of noise and no frame", drivers.ErrFrame, skipped)
			}
			return nil, drivers.ErrTimeout
		}
		if err := p.SetReadTimeout(min(left, pollSlice)); err != nil {
			return nil, err
		}
		n, err := p.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("read: %w", err)
		}
	}
}

// Resync is the split of the 68-framed meter protocols (DL/T 645, CJ/T
// 188): it skips preamble and noise before start, returns a frame that
// frameAt accepts whole, and skips one byte after a false start. frameAt
// reports a frame beginning at b[0] == start: its length when whole and
// valid, bad when it cannot be one, (0, false) when more bytes are needed.
func Resync(buf []byte, start byte, frameAt func(b []byte) (n int, bad bool)) (skip, n int, err error) {
	i := bytes.IndexByte(buf, start)
	if i < 0 {
		return len(buf), 0, nil
	}
	if i > 0 {
		return i, 0, nil
	}
	n, bad := frameAt(buf)
	switch {
	case n > 0:
		return 0, n, nil
	case bad:
		return 1, 0, nil
	}
	// Incomplete: a false start byte with a large length could hide a
	// whole frame that is already buffered behind it.
	for j := 1; j < len(buf); j++ {
		if buf[j] == start {
			if m, _ := frameAt(buf[j:]); m > 0 {
				return j, 0, nil
			}
		}
	}
	return 0, 0, nil
}
