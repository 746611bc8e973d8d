package modbussim

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestOrderWords(t *testing.T) {
	const v = 0x11223344
	cases := map[Order][2]uint16{
		ABCD:   {0x1122, 0x3344},
		CDAB:   {0x3344, 0x1122},
		BADC:   {0x2211, 0x4433},
		DCBA:   {0x4433, 0x2211},
		"cdab": {0x3344, 0x1122},
	}
	for o, want := range cases {
		got, err := o.words(v)
		if err != nil || got != want {
			t.Errorf("%s: %04X, %v; want %04X", o, got, err, want)
		}
	}
	if _, err := Order("ACBD").words(v); !errors.Is(err, ErrOrder) {
		t.Errorf("bad order: %v", err)
	}
}

func TestSet32(t *testing.T) {
	u := NewUnit(1)
	must(t, u.SetFloat32(InputRegisters, 0, 25.5, ABCD)) // 0x41CC0000
	must(t, u.SetUint32(HoldingRegisters, 10, 0xDEADBEEF, BADC))
	if a, _ := u.Input(0); a != 0x41CC {
		t.Errorf("float 25.5 ABCD high word = %#04x", a)
	}
	if a, _ := u.Holding(10); a != 0xADDE {
		t.Errorf("BADC first word = %#04x", a)
	}
	if err := u.SetUint32(Coils, 0, 1, ABCD); !errors.Is(err, ErrTable) {
		t.Errorf("32-bit value into coils: %v", err)
	}
	if err := u.SetUint32(HoldingRegisters, 0xFFFF, 1, ABCD); !errors.Is(err, ErrTable) {
		t.Errorf("32-bit value past 65535: %v", err)
	}
	if err := u.SetFloat32(HoldingRegisters, 0, 1, "XYZW"); !errors.Is(err, ErrOrder) {
		t.Errorf("bad order: %v", err)
	}
}

func TestParseFault(t *testing.T) {
	good := map[string]Fault{
		"none":           {},
		"silent":         Silent(),
		"badcrc":         BadCRC(),
		"exception:4":    Exception(4),
		"exception:0x0B": Exception(11),
		"slow:1500ms":    Slow(1500 * time.Millisecond),
		"silent*3":       Silent().Times(3),
		"exception:6*1":  Exception(6).Times(1),
		" slow:2s ":      Slow(2 * time.Second),
	}
	for s, want := range good {
		got, err := ParseFault(s)
		if err != nil || got != want {
			t.Errorf("ParseFault(%q) = %+v, %v; want %+v", s, got, err, want)
			continue
		}
		back, err := ParseFault(got.String())
		if err != nil || back != got {
			t.Errorf("round trip of %q via %q = %+v, %v", s, got.String(), back, err)
		}
	}
	for _, s := range []string{"", "loud", "exception", "exception:0", "exception:256", "slow", "slow:-1s",
		"slow:fast", "silent:3", "none*2", "silent*0", "silent*x", "badcrc:1"} {
		if _, err := ParseFault(s); !errors.Is(err, ErrFault) {
			t.Errorf("ParseFault(%q) error %v, want ErrFault", s, err)
		}
	}
}

func TestParseTable(t *testing.T) {
	for s, want := range map[string]Table{"coil": Coils, "coils": Coils, "discrete": DiscreteInputs,
		"input": InputRegisters, "holding": HoldingRegisters, "Holding": HoldingRegisters} {
		if got, err := ParseTable(s); err != nil || got != want {
			t.Errorf("ParseTable(%q) = %v, %v", s, got, err)
		}
		if got, _ := ParseTable(want.String()); got != want {
			t.Errorf("ParseTable(%v.String()) = %v", want, got)
		}
	}
	if _, err := ParseTable("register"); !errors.Is(err, ErrTable) {
		t.Errorf("bad table: %v", err)
	}
}

// A fault limited with Times lasts that many requests; then the unit
// answers again.
func TestFaultTimes(t *testing.T) {
	u := NewUnit(1)
	u.SetHolding(0, 7)
	u.SetFault(Silent().Times(2))
	req := appendCRC([]byte{1, 3, 0, 0, 0, 1})
	p := serveMem(t, NewBus(mode9600, u), req, req, req)
	if want := appendCRC([]byte{1, 3, 2, 0, 7}); string(p.out) != string(want) {
		t.Errorf("got % X, want one reply % X", p.out, want)
	}
	if f := u.Fault(); f != (Fault{}) {
		t.Errorf("fault left after it ran out: %v", f)
	}
}

// Broadcast writes reach every unit except silent ones, and nobody
// answers; broadcast reads are ignored.
func TestBroadcast(t *testing.T) {
	a, b, c := NewUnit(1), NewUnit(2), NewUnit(3)
	for _, u := range []*Unit{a, b, c} {
		u.SetHolding(0, 0, 0)
	}
	c.SetFault(Silent())
	bus := NewBus(mode9600, a, b, c)
	p := serveMem(t, bus,
		appendCRC([]byte{0, 0x10, 0, 0, 0, 2, 4, 0, 9, 0, 8}),
		appendCRC([]byte{0, 3, 0, 0, 0, 1}))
	if len(p.out) != 0 {
		t.Errorf("a broadcast got a reply: % X", p.out)
	}
	for _, u := range []*Unit{a, b} {
		if v, _ := u.Holding(1); v != 8 {
			t.Errorf("unit %d holding 1 = %d after the broadcast, want 8", u.ID(), v)
		}
	}
	if v, _ := c.Holding(1); v != 0 {
		t.Errorf("the silent unit applied a broadcast: holding 1 = %d", v)
	}
	if s := bus.Stats(); s.Broadcasts != 2 || s.Frames != 2 {
		t.Errorf("stats %+v", s)
	}
}

// Animate runs before each reply with the bus's clock.
func TestAnimate(t *testing.T) {
	u := NewUnit(1)
	u.SetHolding(0, 0)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	now := base
	u.Animate(func(t time.Time, u *Unit) { u.SetHolding(0, uint16(t.Sub(base)/time.Second)) })
	bus := NewBus(mode9600, u)
	bus.Now = func() time.Time { now = now.Add(5 * time.Second); return now }
	req := appendCRC([]byte{1, 3, 0, 0, 0, 1})
	p := serveMem(t, bus, req, req)
	want := append(appendCRC([]byte{1, 3, 2, 0, 5}), appendCRC([]byte{1, 3, 2, 0, 10})...)
	if string(p.out) != string(want) {
		t.Errorf("got % X, want % X", p.out, want)
	}
}

func TestServeRejectsBadBus(t *testing.T) {
	for name, b := range map[string]*Bus{
		"duplicate id":       NewBus(mode9600, NewUnit(1), NewUnit(1)),
		"id 0":               NewBus(mode9600, NewUnit(0)),
		"id 248":             NewBus(mode9600, NewUnit(248)),
		"nil unit":           NewBus(mode9600, nil),
		"wire time, no mode": func() *Bus { b := NewBus(modeZero, NewUnit(1)); b.WireTime = true; return b }(),
	} {
		if err := b.Serve(t.Context(), newMemPort()); !errors.Is(err, ErrBus) {
			t.Errorf("%s: Serve = %v, want ErrBus", name, err)
		}
	}
}

func TestParseOrder(t *testing.T) {
	for _, s := range []string{"ABCD", "cdab", "BADC", "dcba"} {
		if o, err := ParseOrder(s); err != nil || string(o) != strings.ToUpper(s) {
			t.Errorf("ParseOrder(%q) = %q, %v", s, o, err)
		}
	}
	if _, err := ParseOrder("ABDC"); !errors.Is(err, ErrOrder) {
		t.Errorf("ParseOrder(ABDC): %v", err)
	}
}
