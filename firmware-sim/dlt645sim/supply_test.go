package dlt645sim

import (
	"testing"
	"time"
)

// A lost phase reads 0 V through the animation; restored, it reads 220 V
// and wanders again; a power cut takes all three and the load.
func TestSupplyFaults(t *testing.T) {
	now := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	m := NewMeter("202611300001", V2007)
	m.SetTimeSource(func() time.Time { return now })
	m.Set("power_kw", "1.5000")
	m.Animate(Animation{Seed: 1})
	if err := m.LosePhase('b'); err != nil {
		t.Fatal(err)
	}
	if err := m.LosePhase('x'); err == nil {
		t.Error("phase x accepted")
	}
	now = now.Add(time.Minute)
	if v, _ := m.Get("voltage_b_v"); v != "0.0" || !m.Lost('b') {
		t.Errorf("lost phase b reads %s", v)
	}
	if v, _ := m.Get("voltage_a_v"); v == "0.0" {
		t.Errorf("phase a lost too")
	}
	if err := m.RestorePhase('b'); err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Get("voltage_b_v"); v != "220.0" || m.Lost('b') {
		t.Errorf("restored phase b reads %s", v)
	}
	m.PowerCut()
	e0, _ := m.Get("energy_kwh")
	now = now.Add(time.Hour)
	for _, k := range []string{"voltage_a_v", "voltage_b_v", "voltage_c_v"} {
		if v, _ := m.Get(k); v != "0.0" {
			t.Errorf("after a power cut %s = %s", k, v)
		}
	}
	if e1, _ := m.Get("energy_kwh"); e1 != e0 {
		t.Errorf("energy ran on during the cut: %s → %s", e0, e1)
	}
	m.PowerRestore()
	if v, _ := m.Get("voltage_c_v"); v != "220.0" {
		t.Errorf("after restore voltage_c_v = %s", v)
	}
}
