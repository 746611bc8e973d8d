package bus

import (
	"errors"
	"time"
)

var errNotPolled = errors.New("not polled yet")

// health is one device's state machine: degraded until its first answer,
// ok while it answers fully, degraded when a poll fails or answers in
// part, down after downAfter polls in a row without an answer.
type health struct {
	state   State
	fails   int  // polls in a row without an answer
	mute    bool // the last poll got no byte back at all
	backoff time.Duration
	lastErr error
	lastOK  time.Time
	polls   uint64
	failed  uint64 // polls that ended in an error (answered in part included)
}

func newHealth() health { return health{state: Degraded, lastErr: errNotPolled} }

// probe reports whether the next poll is a probe: allowed one unanswered
// request only.
func (h *health) probe() bool { return h.state == Down || h.mute }

// record notes a poll that ended at now with err, having produced n
// readings and heard (or not) a byte back. It returns the previous state.
func (h *health) record(err error, n int, heard bool, now time.Time, downAfter int) (prev State) {
	prev = h.state
	h.polls++
	if err != nil {
		h.failed++
	}
	h.mute = err != nil && n == 0 && !heard
	switch {
	case err == nil:
		h.fails, h.backoff, h.state, h.lastErr, h.lastOK = 0, 0, OK, nil, now
	case n > 0:
		// Answered in part: the device is alive.
		h.fails, h.backoff, h.state, h.lastErr, h.lastOK = 0, 0, Degraded, err, now
	default:
		h.fails++
		h.lastErr = err
		h.state = Degraded
		if h.fails >= downAfter {
			h.state = Down
		}
	}
	return prev
}

// lineDown marks the device down because its line (or its own set-up)
// failed with err.
func (h *health) lineDown(err error) { h.state, h.lastErr = Down, err }

// backoffPolicy spaces the tries of a down device.
type backoffPolicy struct {
	min, max time.Duration
	// jitter returns a random duration in [0, d].
	jitter func(d time.Duration) time.Duration
}

// next doubles h's back-off window (starting from max(interval, min), up
// to max) and returns when the device is tried next: at a random point in
// the second half of the window, so it costs at most one probe per window.
func (p backoffPolicy) next(h *health, interval time.Duration, now time.Time) time.Time {
	if h.backoff == 0 {
		h.backoff = max(interval, p.min)
	}
	h.backoff = min(h.backoff*2, p.max)
	return now.Add(h.backoff/2 + p.jitter(h.backoff/2))
}

// DeviceStatus is one device's state, last error and schedule.
type DeviceStatus struct {
	State   State
	LastErr string
	Polls   uint64    // polls (and probes) since the line started
	Failed  uint64    // of those, the polls that ended in an error (answered in part included)
	Fails   int       // polls in a row without an answer
	LastOK  time.Time // end of the last poll that got an answer; zero if none
	Next    time.Time // when the device is next due
	// Backoff is the current back-off window of a down device (0 when
	// the device is not backed off).
	Backoff time.Duration
}

func (h *health) status(next time.Time) DeviceStatus {
	s := DeviceStatus{State: h.state, Polls: h.polls, Failed: h.failed, Fails: h.fails, LastOK: h.lastOK, Next: next, Backoff: h.backoff}
	if h.lastErr != nil {
		s.LastErr = h.lastErr.Error()
	}
	return s
}
