package cjt188sim

// Leak makes the meter's total rise by mlPerHour millilitres an hour
// (while the valve is open), as a burst pipe behind it would, whatever the
// hour: a night leak is a leak observed at night. Leak(0) stops it. It
// starts (or replaces) the meter's animation, keeping its settlement day.
func (m *Meter) Leak(mlPerHour int64) {
	m.mu.Lock()
	a := Animation{FlowMLPerHour: mlPerHour}
	if m.anim != nil {
		a.SettleDay = m.anim.SettleDay
	}
	m.mu.Unlock()
	m.Animate(a)
}
