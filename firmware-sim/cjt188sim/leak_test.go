package cjt188sim

import (
	"testing"
	"time"
)

// A leak of 36 m³/h raises the total by 0.6 m³ a minute; Leak(0) stops it.
func TestLeak(t *testing.T) {
	now := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	m := NewMeter("20261130000101", ColdWater)
	m.SetTimeSource(func() time.Time { return now })
	if err := m.SetValue("flow_m3", "100.00"); err != nil {
		t.Fatal(err)
	}
	m.Leak(36_000_000)
	now = now.Add(time.Minute)
	if v, _ := m.Get("flow_m3"); v != "100.60000" {
		t.Errorf("after a minute of leak: %s", v)
	}
	m.Leak(0)
	now = now.Add(time.Hour)
	if v, _ := m.Get("flow_m3"); v != "100.60000" {
		t.Errorf("after the leak stopped: %s", v)
	}
}
