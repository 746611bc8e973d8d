package dlt645sim

import "fmt"

// Supply faults: what the grid does to a meter, as opposed to Fault (what
// the meter does to its replies). A lost phase reads 0.0 V and 0.000 A and
// stays there (the animation leaves it alone) until it is restored; a power
// cut loses all three phases and the load (power_kw 0, energy stops). The
// meter still answers: it runs on its own auxiliary supply. A meter that
// loses its auxiliary supply too is SetFault(Silent).

// LosePhase makes phase 'a', 'b' or 'c' read 0 V and 0 A.
func (m *Meter) LosePhase(ph byte) error {
	if ph < 'a' || ph > 'c' {
		return fmt.Errorf("dlt645: phase %q (want a, b or c)", ph)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advance(m.clock.Now())
	m.lost[ph-'a'] = true
	m.vals["voltage_"+string(ph)+"_v"] = 0
	m.vals["current_"+string(ph)+"_a"] = 0
	return nil
}

// RestorePhase brings phase ph back at 220.0 V (the current stays 0 until
// set).
func (m *Meter) RestorePhase(ph byte) error {
	if ph < 'a' || ph > 'c' {
		return fmt.Errorf("dlt645: phase %q (want a, b or c)", ph)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advance(m.clock.Now())
	m.lost[ph-'a'] = false
	m.vals["voltage_"+string(ph)+"_v"] = 2200
	return nil
}

// PowerCut loses all three phases and the load.
func (m *Meter) PowerCut() {
	for _, ph := range []byte("abc") {
		m.LosePhase(ph) // a, b, c are valid
	}
	m.mu.Lock()
	m.vals["power_kw"] = 0
	m.mu.Unlock()
}

// PowerRestore brings the three phases back (the load stays 0 until set).
func (m *Meter) PowerRestore() {
	for _, ph := range []byte("abc") {
		m.RestorePhase(ph) // a, b, c are valid
	}
}

// Lost reports whether phase ph is lost.
func (m *Meter) Lost(ph byte) bool {
	if ph < 'a' || ph > 'c' {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lost[ph-'a']
}
