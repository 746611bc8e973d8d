package bus

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/townlink/townlink/drivers"
)

// Stats are a line's figures since it started. Every poll counts once in
// Transactions and once in exactly one of OK, Timeouts, FrameErrors,
// DeviceErrors and OtherErrors (a poll cut short because the line is
// stopping counts in none).
type Stats struct {
	Transactions uint64 // polls attempted
	OK           uint64 // polls answered fully
	Timeouts     uint64 // polls that got no answer (probes included)
	FrameErrors  uint64 // bad checksum, cut-off, garbage
	DeviceErrors uint64 // exception or abnormal replies
	OtherErrors  uint64
	// Probes are polls allowed one unanswered request only: of a down
	// device, or of one whose last poll got no byte back.
	Probes uint64

	Requests   uint64 // frames written to the line: every request, retry and Do job's write
	Unanswered uint64 // requests after which not one byte came back (broadcasts included)
	BytesOut   uint64
	BytesIn    uint64
	Jobs       uint64 // Do and PollNow calls run on the line
	Reopens    uint64 // times the port failed and was reopened

	Busy    time.Duration // time spent in polls and jobs (silence kept inside them included)
	Silence time.Duration // time spent keeping inter-frame silence before requests
	Uptime  time.Duration
	// PortOpen says whether the port is open now.
	PortOpen bool
}

// Utilisation is the fraction of time the line was busy.
func (s Stats) Utilisation() float64 {
	if s.Uptime <= 0 {
		return 0
	}
	return float64(s.Busy) / float64(s.Uptime)
}

// Result is what one poll came to, as Stats counts it.
type Result uint8

// Poll results.
const (
	ResultOK          Result = iota // answered fully
	ResultTimeout                   // no answer
	ResultFrame                     // bad checksum, cut-off, garbage
	ResultDevice                    // the device answered with an exception or abnormal reply
	ResultOther                     // any other error
	ResultInterrupted               // cut short because the line is stopping: not counted
)

// Classify returns the result of a poll that ended with err.
func Classify(err error) Result {
	switch {
	case err == nil:
		return ResultOK
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ResultInterrupted
	case errors.Is(err, drivers.ErrTimeout):
		return ResultTimeout
	case errors.Is(err, drivers.ErrFrame):
		return ResultFrame
	case isDeviceError(err):
		return ResultDevice
	}
	return ResultOther
}

// isDeviceError reports protocol exception errors that know they came
// from a live device (Modbus exceptions, DL/T 645 abnormal replies).
func isDeviceError(err error) bool {
	var de interface{ DeviceAnswered() bool }
	return errors.As(err, &de) && de.DeviceAnswered()
}

// counters are a line's Stats, safe for concurrent readers. Only the
// line's goroutine writes them.
type counters struct {
	mu    sync.Mutex
	s     Stats
	start time.Time
}

func (c *counters) started(now time.Time) {
	c.mu.Lock()
	c.start = now
	c.mu.Unlock()
}

func (c *counters) poll(r Result, probe bool, busy time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.Transactions++
	c.s.Busy += busy
	if probe {
		c.s.Probes++
	}
	switch r {
	case ResultOK:
		c.s.OK++
	case ResultTimeout:
		c.s.Timeouts++
	case ResultFrame:
		c.s.FrameErrors++
	case ResultDevice:
		c.s.DeviceErrors++
	case ResultOther:
		c.s.OtherErrors++
	}
}

func (c *counters) job(busy time.Duration) {
	c.mu.Lock()
	c.s.Jobs++
	c.s.Busy += busy
	c.mu.Unlock()
}

func (c *counters) request(n int, silence time.Duration) {
	c.mu.Lock()
	c.s.Requests++
	c.s.BytesOut += uint64(n)
	c.s.Silence += silence
	c.mu.Unlock()
}

func (c *counters) reply(n int) {
	c.mu.Lock()
	c.s.BytesIn += uint64(n)
	c.mu.Unlock()
}

func (c *counters) unanswered() {
	c.mu.Lock()
	c.s.Unanswered++
	c.mu.Unlock()
}

func (c *counters) reopened() {
	c.mu.Lock()
	c.s.Reopens++
	c.mu.Unlock()
}

func (c *counters) portOpen(open bool) {
	c.mu.Lock()
	c.s.PortOpen = open
	c.mu.Unlock()
}

func (c *counters) snapshot(now time.Time) Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.s
	if !c.start.IsZero() {
		s.Uptime = now.Sub(c.start)
	}
	return s
}
