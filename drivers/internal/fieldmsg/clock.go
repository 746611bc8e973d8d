package fieldmsg

import (
	"fmt"
	"math"
	"time"

	"github.com/townlink/townlink/drivers"
)

// Device times. A time is plausible from 2001-01-01 up to (not including)
// 2100-01-01 UTC, whatever the gateway's clock says: the gateway may have
// no clock yet (a box without RTC battery before NTP reads 1970), so only
// times no working clock can show are refused. 2000-01-01 and 1970-01-01
// are where RTC chips and firmwares restart after a power loss, hence the
// floor of 2001.
const (
	// PlausibleFrom is 2001-01-01T00:00:00Z in ms since the Unix epoch.
	PlausibleFrom int64 = 978307200000
	// PlausibleUntil is 2100-01-01T00:00:00Z in ms since the Unix epoch
	// (excluded).
	PlausibleUntil int64 = 4102444800000
	// SkewLimit is how far a message's time may be from the gateway's
	// clock, either way, before the reading is flagged
	// drivers.QualityClockSkew: beyond NTP-less drift and a short outage's
	// resends, but below a time-zone error (whole hours).
	SkewLimit = time.Hour
)

// Plausible reports whether ms (since the Unix epoch) is a plausible
// device time: in [PlausibleFrom, PlausibleUntil).
func Plausible(ms int64) bool {
	return ms >= PlausibleFrom && ms < PlausibleUntil
}

const implausible = "implausible time (before 2001 or from 2100 on)"

// Instant reads a time as milliseconds since the Unix epoch (a whole
// number) or an RFC 3339 text with a zone, and refuses one that is not
// Plausible. How far it is from the gateway's clock is not its concern
// (see Skew).
func (f *Fields[D]) Instant(name string, required bool) (int64, bool) {
	ms, ok := f.anyTime(name, required)
	if ok && !Plausible(ms) {
		f.schema(name, f.Obj[name], implausible)
		return 0, false
	}
	return ms, ok
}

// Timestamp reads an optional time like Instant, but an implausible value
// is returned, not refused: the caller decides (a message's ts that is
// implausible is ignored, the gateway stamps the reading). A value that is
// not a time at all is a failure.
func (f *Fields[D]) Timestamp(name string) (int64, bool) {
	return f.anyTime(name, false)
}

func (f *Fields[D]) anyTime(name string, required bool) (int64, bool) {
	n := f.Get(name, required)
	if n == nil {
		return 0, false
	}
	switch n.Kind {
	case KindNum:
		v, err := ParseInteger(n.Text)
		if err != nil {
			f.schema(name, n, "not milliseconds since the epoch: "+err.Error())
			return 0, false
		}
		return v, true
	case KindStr:
		t, err := time.Parse(time.RFC3339Nano, n.Text)
		if err != nil {
			f.schema(name, n, "not an RFC 3339 time with a zone")
			return 0, false
		}
		return t.UnixMilli(), true
	}
	f.schema(name, n, fmt.Sprintf("is %s, want ms since the epoch or RFC 3339", n.Kind))
	return 0, false
}

// Skew judges the device times of one message against the gateway's
// clock. The message's own time (its ts, or the event time that stamps
// the reading) gives the offset, device minus gateway; any other device
// time in the message (an evidence file's end_at) can only be in the
// past, so one further ahead of the gateway than that offset gives the
// offset instead. When the gateway's own clock is not Plausible (not set
// yet), nothing is judged.
type Skew struct {
	now     int64
	synced  bool
	msg     int64
	hasMsg  bool
	lead    int64
	hasLead bool
}

// NewSkew returns a judge of one message's times against now, the
// gateway's clock.
func NewSkew(now time.Time) *Skew {
	ms := now.UnixMilli()
	return &Skew{now: ms, synced: Plausible(ms)}
}

// Message notes the message's own time, ms since the epoch, plausible or
// not (a device clock that restarted at 1970 is skewed too).
func (s *Skew) Message(ms int64) {
	s.msg, s.hasMsg = sub(ms, s.now), true
}

// Event notes another device time of the message.
func (s *Skew) Event(ms int64) {
	if d := sub(ms, s.now); !s.hasLead || d > s.lead {
		s.lead, s.hasLead = d, true
	}
}

// Offset returns the device's offset from the gateway in ms and whether
// it is beyond SkewLimit.
func (s *Skew) Offset() (int64, bool) {
	if !s.synced {
		return 0, false
	}
	lim := SkewLimit.Milliseconds()
	off, skewed := s.msg, s.hasMsg && (s.msg > lim || s.msg < -lim)
	if s.hasLead && s.lead > lim && (!s.hasMsg || s.lead > s.msg) {
		off, skewed = s.lead, true
	}
	return off, skewed
}

// Mark flags rd drivers.QualityClockSkew with the point clock_offset_ms
// when the device's clock is skewed.
func (s *Skew) Mark(rd *drivers.Reading) {
	if off, ok := s.Offset(); ok {
		rd.Quality |= drivers.QualityClockSkew
		rd.Values["clock_offset_ms"] = drivers.Int(off)
	}
}

// sub is a - b, saturated at the int64 limits.
func sub(a, b int64) int64 {
	d := a - b
	if (b > 0 && d > a) || (b < 0 && d < a) {
		if b > 0 {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return d
}
