package bus

import "time"

// schedule says when each device of a line is next due. It is pure: the
// caller passes the time in. Slot i is device i; an inactive slot (a
// device that could not be set up) is never due.
type schedule struct {
	slots []slot
	seq   uint64 // counts set calls: among slots due at one time, the one set first goes first
}

type slot struct {
	interval time.Duration
	next     time.Time
	seq      uint64
	active   bool
}

func newSchedule(intervals []time.Duration) *schedule {
	s := &schedule{slots: make([]slot, len(intervals))}
	for i, iv := range intervals {
		s.slots[i].interval = iv
	}
	return s
}

// start activates the slots in active and spreads their first polls over
// the first interval (at most a second), so devices with one interval do
// not all fire at once.
func (s *schedule) start(now time.Time, active []bool) {
	n := time.Duration(len(s.slots))
	for i := range s.slots {
		sl := &s.slots[i]
		sl.active = active[i]
		s.set(i, now.Add(time.Duration(i)*min(sl.interval, time.Second)/n))
	}
}

// stop deactivates every slot (the line is closed).
func (s *schedule) stop() {
	for i := range s.slots {
		s.slots[i].active = false
	}
}

// due returns the active slot due first (the one due longest when several
// are; of those due at the same time, the one scheduled first) and when it
// is due; ok is false when no slot is active.
func (s *schedule) due() (i int, at time.Time, ok bool) {
	i = -1
	for j, sl := range s.slots {
		if sl.active && (i < 0 || sl.next.Before(s.slots[i].next) || sl.next.Equal(s.slots[i].next) && sl.seq < s.slots[i].seq) {
			i = j
		}
	}
	if i < 0 {
		return 0, time.Time{}, false
	}
	return i, s.slots[i].next, true
}

// next returns when slot i is due after a poll that ended at now: the
// next slot of its phase (never a burst to catch up), or now for a slot
// with interval 0 (continuous: due again at once, behind those waiting
// longer).
func (s *schedule) next(i int, now time.Time) time.Time {
	sl := s.slots[i]
	if sl.interval <= 0 {
		return now
	}
	next := sl.next.Add(sl.interval)
	if next.Before(now) {
		next = now.Add(sl.interval - (now.Sub(sl.next) % sl.interval))
	}
	return next
}

// set makes slot i due at t.
func (s *schedule) set(i int, t time.Time) {
	s.seq++
	s.slots[i].next, s.slots[i].seq = t, s.seq
}

// at returns when slot i is due.
func (s *schedule) at(i int) time.Time { return s.slots[i].next }
