package addrsearch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/townlink/townlink/hardware"
)

// maxListen bounds what Listen keeps.
const maxListen = 4096

// listenSlice is how often a blocked read wakes up to check ctx.
const listenSlice = 50 * time.Millisecond

// Split finds one frame at the start of b: its length n, or skip bytes
// that cannot start one (noise, a preamble), or both 0 if b is an
// incomplete frame.
type Split func(b []byte) (skip, n int, err error)

// Heard is what came back to one request in its whole listening window.
type Heard struct {
	Frames [][]byte // valid frames, in order
	Noise  int      // bytes that were not part of a valid frame (preambles excluded by the split)
}

// Outcome classifies what was heard: nothing is Silence, exactly one frame
// and no noise is Answer, anything else is Collision.
func (h Heard) Outcome() Outcome {
	switch {
	case len(h.Frames) == 0 && h.Noise == 0:
		return Silence
	case len(h.Frames) == 1 && h.Noise == 0:
		return Answer
	}
	return Collision
}

// Exchange drops stale input, writes req and then listens for the whole
// window: replies of several devices may follow one another, so it does
// not stop at the first frame. keep says which frames count (e.g. replies,
// not the echo of the request); others are skipped without counting as
// noise. Bytes skipped by split before a frame, other than the preamble
// byte pre, count as noise.
func Exchange(ctx context.Context, p hardware.Port, req []byte, window time.Duration, split Split, pre byte, keep func([]byte) bool) (Heard, error) {
	if err := p.Flush(); err != nil {
		return Heard{}, fmt.Errorf("flush: %w", err)
	}
	if _, err := p.Write(req); err != nil {
		return Heard{}, fmt.Errorf("write: %w", err)
	}
	deadline := time.Now().Add(window)
	var buf []byte
	chunk := make([]byte, 256)
	for {
		if err := ctx.Err(); err != nil {
			return Heard{}, err
		}
		left := time.Until(deadline)
		if left <= 0 || len(buf) > maxListen {
			break
		}
		if err := p.SetReadTimeout(min(left, listenSlice)); err != nil {
			return Heard{}, err
		}
		n, err := p.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return Heard{}, fmt.Errorf("read: %w", err)
		}
	}
	return Parse(buf, split, pre, keep), nil
}

// Parse splits what was heard into frames and noise (see Exchange).
func Parse(buf []byte, split Split, pre byte, keep func([]byte) bool) Heard {
	var h Heard
	for len(buf) > 0 {
		skip, n, err := split(buf)
		switch {
		case err != nil:
			h.Noise += len(buf)
			return h
		case n > 0:
			if keep == nil || keep(buf[:n]) {
				h.Frames = append(h.Frames, append([]byte(nil), buf[:n]...))
			}
			buf = buf[n:]
		case skip > 0:
			skip = min(skip, len(buf))
			for _, b := range buf[:skip] {
				if b != pre {
					h.Noise++
				}
			}
			buf = buf[skip:]
		default: // an incomplete frame at the end: cut off or garbled
			for _, b := range buf {
				if b != pre {
					h.Noise++
				}
			}
			return h
		}
	}
	return h
}
