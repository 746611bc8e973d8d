package cjt188sim

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/townlink/townlink/firmware-sim/dlt645sim"
	"github.com/townlink/townlink/firmware-sim/internal/rs485"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serial"
	"github.com/townlink/townlink/internal/testkit"
)

var mode2400 = hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}

// bus is the gateway's side of one PTY, opened with the real serial
// backend as the gateway would; the simulated lines share the other side.
type bus struct{ gw *serial.Port }

func newBus(t *testing.T, serve ...func(context.Context, hardware.Port) error) *bus {
	t.Helper()
	return &bus{gw: testkit.OpenServedPTY(t, mode2400, serve...)}
}

func (b *bus) send(t *testing.T, frame []byte) {
	t.Helper()
	if err := b.gw.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.gw.Write(frame); err != nil {
		t.Fatal(err)
	}
}

// reply is what answers the request sent: the bytes up to 300 ms of silence.
func (b *bus) reply(t *testing.T) []byte {
	t.Helper()
	return testkit.ReadReply(t, b.gw, 300*time.Millisecond)
}

// One PTY, one RS-485 line: two water meters and a DL/T 645 meter behind a
// Multidrop. Each request is answered by its own device only.
func TestMixedProtocolsOnOneLine(t *testing.T) {
	w1 := NewMeter("00000000000001", ColdWater)
	w2 := NewMeter("00000000000002", ColdWater)
	w1.Set("flow_m3", "1.11")
	w2.Set("flow_m3", "2.22")
	water := NewLine(mode2400, w1, w2)
	e := dlt645sim.NewMeter("000000000007", dlt645sim.V2007)
	e.Set("energy_kwh", "7.77")
	elec := dlt645sim.NewLine(mode2400, e)
	b := newBus(t, water.Serve, elec.Serve)

	for i, m := range []*Meter{w1, w2} {
		b.send(t, frame{typ: 0x10, addr: m.addr, c: 0x01, data: []byte{0x90, 0x1F, byte(i)}}.encode(2))
		got := b.reply(t)
		f, start, _, _, ok := scan(got)
		if !ok || start != 3 || f.addr != m.addr || f.data[2] != byte(i) {
			t.Fatalf("water meter %d: % X", i, got)
		}
		if want := []byte{0x11 * byte(i+1), byte(i + 1), 0, 0, 0x2C}; !bytes.Equal(f.data[3:8], want) {
			t.Errorf("water meter %d: flow % X, want % X", i, f.data[3:8], want)
		}
	}

	// DL/T 645 read of forward energy, hand-built: FE FE 68 A0..A5 68 11 04 DI+33 CS 16.
	req := []byte{0xFE, 0xFE, 0x68, 0x07, 0, 0, 0, 0, 0, 0x68, 0x11, 0x04, 0x33, 0x33, 0x34, 0x33}
	req = append(req, rs485.Checksum(req[2:]), 0x16)
	b.send(t, req)
	got := b.reply(t)
	want := []byte{0xFE, 0xFE, 0xFE, 0xFE, 0x68, 0x07, 0, 0, 0, 0, 0, 0x68, 0x91, 0x08, 0x33, 0x33, 0x34, 0x33, 0x33 + 0x77, 0x33 + 0x07, 0x33, 0x33}
	want = append(want, rs485.Checksum(want[4:]), 0x16)
	if !bytes.Equal(got, want) {
		t.Fatalf("DL/T 645 meter on the shared line:\n got % X\nwant % X", got, want)
	}

	// The universal read reaches both water meters: they collide.
	b.send(t, testkit.Unhex(t, "FE FE FE 68 10 AA AA AA AA AA AA AA 01 03 90 1F 01 D2 16"))
	got = b.reply(t)
	if _, _, _, _, ok := scan(got); ok || len(got) == 0 {
		t.Errorf("collision gave % X, want a broken frame", got)
	}
	s := water.Stats()
	if s.Collisions != 1 || s.Replies != 3 {
		t.Errorf("water stats %+v", s)
	}
	if es := elec.Stats(); es.Replies != 1 || es.Discarded == 0 {
		t.Errorf("DL/T 645 line stats %+v: want 1 reply and the CJ/T frames discarded as noise", es)
	}
}

func TestFaultsOnTheWire(t *testing.T) {
	m := NewMeter("00201510270588", ColdWater)
	m.SetPreamble(0)
	line := NewLine(mode2400, m)
	b := newBus(t, line.Serve)
	for i, c := range []struct {
		fault Fault
		check func(got []byte) bool
	}{
		{None, func(got []byte) bool { f, _, _, _, ok := scan(got); return ok && len(got) == 35 && f.data[2] == 0x40 }},
		{Silent, func(got []byte) bool { return len(got) == 0 }},
		{BadChecksum, func(got []byte) bool { _, _, _, _, ok := scan(got); return !ok && len(got) == 35 }},
		{NoiseBefore, func(got []byte) bool {
			f, start, _, _, ok := scan(got)
			return ok && start >= 1 && start <= 8 && f.addr == m.addr
		}},
		{WrongAddress, func(got []byte) bool { f, _, _, _, ok := scan(got); return ok && f.addr != m.addr }},
		{CutOff, func(got []byte) bool { return len(got) > 0 && len(got) < 35 }},
		{OldSER, func(got []byte) bool { f, _, _, _, ok := scan(got); return ok && f.data[2] == 0x45 }}, // the CutOff request's SER
	} {
		m.SetFault(c.fault)
		ser := byte(0x40 + i)
		b.send(t, frame{typ: 0x10, addr: m.addr, c: 0x01, data: []byte{0x90, 0x1F, ser}}.encode(2))
		var got []byte
		if c.fault == Silent {
			got = testkit.ReadQuiet(t, b.gw, time.Second)
		} else {
			got = b.reply(t)
		}
		if !c.check(got) {
			t.Errorf("%s: got % X", c.fault, got)
		}
	}
}

// With WireTime at 2400 8E1 the round trip lasts at least the request's and
// the reply's time on the wire plus the turnaround.
func TestWireTime(t *testing.T) {
	m := NewMeter("00201510270588", ColdWater)
	line := NewLine(mode2400, m)
	line.WireTime = true
	b := newBus(t, line.Serve)
	req := testkit.Unhex(t, "FE FE 68 10 88 05 27 10 15 20 00 01 03 90 1F 01 25 16")
	want := mode2400.WireTime(len(req)) + DefaultTurnaround + mode2400.WireTime(3+35)
	if err := b.gw.SetReadTimeout(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	b.send(t, req)
	var got []byte
	buf := make([]byte, 64)
	for deadline := start.Add(3 * time.Second); len(got) < 38 && time.Now().Before(deadline); {
		n, _ := b.gw.Read(buf)
		got = append(got, buf[:n]...)
	}
	took := time.Since(start)
	if _, _, _, _, ok := scan(got); !ok || len(got) != 38 {
		t.Fatalf("reply % X", got)
	}
	if took < want {
		t.Errorf("round trip %v, shorter than the wire time %v", took, want)
	}
	t.Logf("round trip %v, wire time %v", took, want)
}
