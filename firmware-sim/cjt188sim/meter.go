package cjt188sim

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/townlink/townlink/firmware-sim/internal/rs485"
)

// Errors.
var (
	ErrItem    = errors.New("cjt188sim: unknown item")
	ErrValue   = errors.New("cjt188sim: bad value")
	ErrAddress = errors.New("cjt188sim: bad address")
	ErrType    = errors.New("cjt188sim: meter type not simulated")
	ErrUnit    = errors.New("cjt188sim: unit not simulated")
)

// Meter types (T) this simulator speaks: water meters 0x10-0x19 and gas
// meters 0x30-0x39 share the flow record. Heat meters (0x20, 0x21) have a
// longer 901F record that is not simulated.
const (
	ColdWater     byte = 0x10
	HotWater      byte = 0x11
	DrinkingWater byte = 0x12
	ReclaimWater  byte = 0x13
	Gas           byte = 0x30
)

// Unit codes the simulator can report flow in.
const (
	UnitCubicMetre byte = 0x2C // m³, the default
	UnitLitre      byte = 0x29 // L
)

// Valve states, as ST0 bits D1 D0.
const (
	ValveOpen   = "open"   // 00
	ValveClosed = "closed" // 01
	ValveFault  = "fault"  // 11 (abnormal)
)

// flowScale: flow is held in 10^-5 m³ (0.01 L), so both units are exact.
const (
	flowScale       = 5
	flowMax         = 99999999999 // 999999.99999 m³
	defaultPreamble = 3
)

// Meter is one simulated CJ/T 188-2004 meter. It is safe for concurrent
// use; a Line serves it on a port.
type Meter struct {
	typ  byte
	addr [7]byte // wire order, A0 first

	mu       sync.Mutex
	flow     int64 // 10^-5 m³
	settle   int64 // 10^-5 m³
	valve    string
	battLow  bool
	st1      byte
	unit     byte
	fault    Fault
	preamble int
	lastSER  byte
	haveSER  bool
	clock    rs485.Clock // also the time source of the animation
	rng      *rand.Rand
	anim     *Animation
	last     time.Time
	flowAcc  int64 // sub-0.01 L remainder, in mL/h × ns
}

// NewMeter returns a meter with address addr14 (1-14 hex digits, most
// significant first, padded with 0 at the high end) and type meterType
// (ColdWater, …, Gas). It panics on a bad address or an unsimulated type,
// like regexp.MustCompile. A new meter reads 0 m³ with the valve open and
// its clock on the host's (time.Local).
func NewMeter(addr14 string, meterType byte) *Meter {
	a, err := parseAddress(addr14)
	if err != nil {
		panic(err)
	}
	if !(meterType >= 0x10 && meterType <= 0x19 || meterType >= 0x30 && meterType <= 0x39) {
		panic(fmt.Errorf("%w: type %#02x (want water 0x10-0x19 or gas 0x30-0x39)", ErrType, meterType))
	}
	m := &Meter{
		typ: meterType, addr: a, valve: ValveOpen, unit: UnitCubicMetre,
		preamble: defaultPreamble, clock: rs485.NewClock(time.Now),
		rng: rand.New(rand.NewPCG(uint64(a[0])|uint64(a[1])<<8, 188)),
	}
	return m
}

func parseAddress(s string) ([7]byte, error) {
	var a [7]byte
	if len(s) == 0 || len(s) > 14 {
		return a, fmt.Errorf("%w: %q (want 1-14 hex digits)", ErrAddress, s)
	}
	b, err := hex.DecodeString(strings.Repeat("0", 14-len(s)) + s)
	if err != nil {
		return a, fmt.Errorf("%w: %q: %v", ErrAddress, s, err)
	}
	for i := range 7 {
		a[i] = b[6-i]
	}
	return a, nil
}

// Address is the meter's 14-digit address as printed.
func (m *Meter) Address() string {
	b := make([]byte, 7)
	for i := range 7 {
		b[i] = m.addr[6-i]
	}
	return strings.ToUpper(hex.EncodeToString(b))
}

// Type is the meter type byte T.
func (m *Meter) Type() byte { return m.typ }

// Set is SetValue that panics on an error; for test and scenario set-up.
func (m *Meter) Set(item, value string) {
	if err := m.SetValue(item, value); err != nil {
		panic(err)
	}
}

// SetValue sets an item:
//
//	flow_m3      current cumulative flow, decimal m³ with up to 5 decimals (0.01 L), exact
//	settle_m3    cumulative flow on the settlement day, the same
//	valve        open, closed or fault
//	battery_low  true or false
//	st1          status byte ST1 (vendor-defined), two hex digits
//	clock        "2006-01-02 15:04:05", meter local time
func (m *Meter) SetValue(item, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	m.advance(now)
	switch item {
	case "flow_m3", "settle_m3":
		v, err := rs485.ParseFixed(value, flowScale, 6)
		if err != nil {
			return fmt.Errorf("%s: %w: %w", item, ErrValue, err)
		}
		if v < 0 {
			return fmt.Errorf("%w: %s cannot be negative (%q)", ErrValue, item, value)
		}
		if item == "flow_m3" {
			m.flow = v
		} else {
			m.settle = v
		}
	case "valve":
		switch value {
		case ValveOpen, ValveClosed, ValveFault:
			m.valve = value
		default:
			return fmt.Errorf("%w: valve %q (want open, closed or fault)", ErrValue, value)
		}
	case "battery_low":
		switch value {
		case "true", "1":
			m.battLow = true
		case "false", "0":
			m.battLow = false
		default:
			return fmt.Errorf("%w: battery_low %q (want true or false)", ErrValue, value)
		}
	case "st1":
		b, err := hex.DecodeString(value)
		if err != nil || len(b) != 1 {
			return fmt.Errorf("%w: st1 %q (want two hex digits)", ErrValue, value)
		}
		m.st1 = b[0]
	case "clock":
		t, err := time.ParseInLocation(time.DateTime, value, time.Local)
		if err != nil {
			return fmt.Errorf("%w: clock %q: %v", ErrValue, value, err)
		}
		m.clock.Set(t, now)
	default:
		return fmt.Errorf("%w: %q (want flow_m3, settle_m3, valve, battery_low, st1 or clock)", ErrItem, item)
	}
	return nil
}

// Get returns an item as SetValue takes it (flow after animating up to now).
func (m *Meter) Get(item string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	m.advance(now)
	switch item {
	case "flow_m3":
		return rs485.FormatFixed(m.flow, flowScale), true
	case "settle_m3":
		return rs485.FormatFixed(m.settle, flowScale), true
	case "valve":
		return m.valve, true
	case "battery_low":
		return fmt.Sprint(m.battLow), true
	case "st1":
		return fmt.Sprintf("%02X", m.st1), true
	case "clock":
		return m.clock.At(now).Format(time.DateTime), true
	}
	return "", false
}

// SetUnit sets the unit code of the flow values: UnitCubicMetre (0x2C,
// default) or UnitLitre (0x29).
func (m *Meter) SetUnit(code byte) error {
	if code != UnitCubicMetre && code != UnitLitre {
		return fmt.Errorf("%w: %#02x (want 0x2C m³ or 0x29 L)", ErrUnit, code)
	}
	m.mu.Lock()
	m.unit = code
	m.mu.Unlock()
	return nil
}

// SetFault injects f into every following reply; None clears it.
func (m *Meter) SetFault(f Fault) {
	m.mu.Lock()
	m.fault = f
	m.mu.Unlock()
}

// SetPreamble sets how many FE bytes precede each reply (0-4, default 3).
func (m *Meter) SetPreamble(n int) {
	m.mu.Lock()
	m.preamble = min(max(n, 0), 4)
	m.mu.Unlock()
}

// SetTimeSource replaces time.Now for the clock and the animation (tests).
// The meter clock keeps its offset from the time source.
func (m *Meter) SetTimeSource(now func() time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last = m.clock.SetSource(now)
}

// Clock is the meter's real-time clock now, in time.Local.
func (m *Meter) Clock() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.clock.At(m.clock.Now())
}

// Animation makes a meter's values change like a real meter's, computed
// when the meter is read (no goroutine): the flow grows by FlowMLPerHour
// (exactly, while the valve is open), and at 00:00 of the settlement day
// (meter clock) the settlement flow takes the current flow.
type Animation struct {
	FlowMLPerHour int64         // millilitres per hour, 0 to 100 000 000 (100 m³/h)
	SettleDay     int           // day of month 1-28; 0 means 1
	ClockOffset   time.Duration // added to the meter clock when Animate is called
	ClockDriftPPM float64       // the clock gains this many parts per million (negative: loses)
}

// Animate starts the animation a describes.
func (m *Meter) Animate(a Animation) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	m.clock.Adjust(a.ClockOffset, a.ClockDriftPPM, now)
	a.FlowMLPerHour = min(max(a.FlowMLPerHour, 0), maxFlowRate)
	if a.SettleDay < 1 || a.SettleDay > 28 {
		a.SettleDay = 1
	}
	m.anim = &a
	m.last = now
}

const (
	flowUnitMLns = 10 * int64(time.Hour) // 0.01 L (10 mL) in mL/h × ns
	maxFlowRate  = 100_000_000           // mL/h (100 m³/h): with 1-minute steps the product stays inside int64
)

func (m *Meter) advance(now time.Time) {
	if m.anim == nil || !now.After(m.last) {
		return
	}
	from := m.last
	m.last = now
	// The settlement boundary, if the meter clock crossed one.
	before, after := m.clock.At(from), m.clock.At(now)
	b := settlementBefore(after, m.anim.SettleDay)
	if b.After(before) {
		mid := from.Add(b.Sub(before))
		m.accrue(mid.Sub(from))
		m.settle = m.flow
		m.accrue(now.Sub(mid))
		return
	}
	m.accrue(now.Sub(from))
}

func (m *Meter) accrue(dt time.Duration) {
	if m.valve != ValveOpen {
		return
	}
	for dt > 0 {
		step := min(dt, time.Minute)
		dt -= step
		m.flowAcc += m.anim.FlowMLPerHour * int64(step)
		inc := m.flowAcc / flowUnitMLns
		m.flowAcc %= flowUnitMLns
		m.flow = (m.flow + inc) % (flowMax + 1)
	}
}

// settlementBefore is the last 00:00 on day `day` at or before t.
func settlementBefore(t time.Time, day int) time.Time {
	b := time.Date(t.Year(), t.Month(), day, 0, 0, 0, 0, t.Location())
	if b.After(t) {
		b = b.AddDate(0, -1, 0)
	}
	return b
}

func (m *Meter) st0() byte {
	var s byte
	switch m.valve {
	case ValveClosed:
		s = 0x01
	case ValveFault:
		s = 0x03
	}
	if m.battLow {
		s |= 0x04
	}
	return s
}

// flowBytes renders a flow in the meter's unit: XXXXXX.XX, low byte first.
func (m *Meter) flowBytes(v int64) []byte {
	if m.unit == UnitCubicMetre {
		v /= 1000 // to 0.01 m³; a register shows the completed hundredths
	}
	return rs485.BCD(v%100000000, 4)
}

// result is what a meter does with one request frame.
type result struct {
	reply   []byte
	delay   time.Duration
	mine    bool
	faulted bool
}

// matches: T equal or AA (any type); each address byte equal or AA.
func (m *Meter) matches(f frame) bool {
	if f.typ != m.typ && f.typ != anyType {
		return false
	}
	for i := range f.addr {
		if f.addr[i] != anyType && f.addr[i] != m.addr[i] {
			return false
		}
	}
	return true
}

func (m *Meter) handle(req frame) result {
	m.mu.Lock()
	defer m.mu.Unlock()
	if req.c&0x80 != 0 || !m.matches(req) {
		return result{}
	}
	now := m.clock.Now()
	m.advance(now)
	r := result{mine: true}
	if len(req.data) < 3 {
		return r
	}
	di, ser := req.data[:2], req.data[2]
	old := ser - 1
	if m.haveSER {
		old = m.lastSER
	}
	m.lastSER, m.haveSER = ser, true
	if m.fault == OldSER {
		ser = old
	}
	head := []byte{di[0], di[1], ser}
	var rep *frame
	switch {
	case req.c == 0x01 && isDI(di, 0x90, 0x1F): // read metering data
		data := append(head, m.flowBytes(m.flow)...)
		data = append(data, m.unit)
		data = append(data, m.flowBytes(m.settle)...)
		data = append(data, m.unit)
		c := m.clock.At(now)
		data = append(data, rs485.BCDByte(c.Second()), rs485.BCDByte(c.Minute()), rs485.BCDByte(c.Hour()),
			rs485.BCDByte(c.Day()), rs485.BCDByte(int(c.Month())), rs485.BCDByte(c.Year()%100), rs485.BCDByte(c.Year()/100))
		rep = m.reply(0x81, append(data, m.st0(), m.st1))
	case req.c == 0x03 && isDI(di, 0x81, 0x0A): // read address: the address is in the header
		rep = m.reply(0x83, head)
	case req.c == 0x04 && isDI(di, 0xA0, 0x17) && len(req.data) >= 4: // valve control
		switch {
		case m.valve == ValveFault:
			rep = m.reply(0xC4, append(head, m.st0()))
		case req.data[3] == 0x55:
			m.valve = ValveOpen
			rep = m.reply(0x84, append(head, m.st0(), m.st1))
		case req.data[3] == 0x99:
			m.valve = ValveClosed
			rep = m.reply(0x84, append(head, m.st0(), m.st1))
		default:
			rep = m.reply(0xC4, append(head, m.st0()))
		}
	case req.c == 0x01: // a DI this meter does not have
		rep = m.reply(0xC1, append(head, m.st0()))
	}
	if rep != nil {
		r.reply, r.delay, r.faulted = m.emit(*rep)
	}
	return r
}

// isDI accepts a DI in either byte order (most devices send 90 1F, some
// 1F 90); the reply echoes the order of the request.
func isDI(di []byte, hi, lo byte) bool {
	return di[0] == hi && di[1] == lo || di[0] == lo && di[1] == hi
}

func (m *Meter) reply(c byte, data []byte) *frame {
	return &frame{typ: m.typ, addr: m.addr, c: c, data: data}
}

// emit encodes a reply with the meter's preamble and applies its fault
// (OldSER is applied by handle: the reply is counted as faulted here).
func (m *Meter) emit(f frame) (b []byte, delay time.Duration, faulted bool) {
	b, delay, faulted = rs485.Fault(m.fault).Apply(func(wrongAddress bool) []byte {
		if wrongAddress {
			f.addr[0] ^= 0x01
		}
		return f.encode(m.preamble)
	}, m.preamble, frameStart, m.rng)
	return b, delay, faulted || m.fault == OldSER
}
