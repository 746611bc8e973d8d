package cjt188

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/serialio"
	"github.com/townlink/townlink/hardware"
)

// Defaults, in one place. Battery meters behind M-Bus converters are slow
// (protocols.md §3.3: timeout ≥ 1.5–2 s, ≥ 100 ms between frames, 2–3
// retries).
const (
	DefaultTimeout   = 2 * time.Second
	DefaultRetries   = 2 // see drivers.CheckRetries for what a count means
	DefaultPreamble  = 4
	DefaultGap       = 100 * time.Millisecond // silence before every request
	DefaultMeterType = TypeColdWater
	DefaultDIOrder   = "901F"
)

// DefaultMode is the common serial framing of CJ/T 188 lines: 2400 8E1.
func DefaultMode() hardware.Mode { return hardware.Mode{Baud: 2400, Parity: hardware.ParityEven} }

// Config describes one water meter on a line.
type Config struct {
	Device    string // device id
	Address   string // 14 digits high first; AA bytes are wildcards
	MeterType byte   // T; 0 means DefaultMeterType (cold water)
	DIOrder   string // "901F" (default) or "1F90": byte order of the DI we send
	// Timeout per request; 0 means DefaultTimeout.
	Timeout time.Duration
	// Retries after a timeout or a bad or unexpected reply: 0 means none,
	// as everywhere (drivers.CheckRetries); the default count is
	// DefaultRetries, applied by whoever builds the Config.
	Retries int
	// Preamble is the number of FE bytes before a request; 0 means
	// DefaultPreamble, negative means none.
	Preamble int
	Class    drivers.Class

	// Gap is the silence the meter needs on the line before each request;
	// 0 means DefaultGap. The driver declares it (Meter.FrameGap) and the
	// line's owner keeps it: the driver never sleeps between requests.
	Gap time.Duration
	// Location is the zone of the meter clock (its date and time are
	// local time). Required: the process's zone (time.Local) is never
	// used.
	Location *time.Location
	// Now is the gateway clock; nil means time.Now.
	Now func() time.Time
	// Logger receives debug records (retries, late replies); nil discards.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MeterType == 0 {
		c.MeterType = DefaultMeterType
	}
	if c.DIOrder == "" {
		c.DIOrder = DefaultDIOrder
	}
	c.DIOrder = strings.ToUpper(c.DIOrder)
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	switch {
	case c.Preamble == 0:
		c.Preamble = DefaultPreamble
	case c.Preamble < 0:
		c.Preamble = 0
	}
	if c.Gap == 0 {
		c.Gap = DefaultGap
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate checks the configuration (zero values take their defaults).
func (c Config) Validate() error {
	_, _, err := c.check()
	return err
}

func (c Config) check() (Config, Address, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: cjt188: device %q: %s", drivers.ErrConfig, c.Device, fmt.Sprintf(format, a...))
	}
	if c.Device == "" {
		return c, Address{}, bad("no device id")
	}
	addr, err := ParseAddress(c.Address)
	if err != nil {
		return c, Address{}, bad("address: %v", err)
	}
	c = c.withDefaults()
	switch t := c.MeterType; {
	case t >= 0x10 && t <= 0x19, t >= 0x30 && t <= 0x39, t == TypeAny:
	case t == TypeHeat || t == TypeHeatCold:
		return c, Address{}, bad("meter type %02X is a heat meter: its 901F record is not supported", t)
	default:
		return c, Address{}, bad("meter type %02X (want water 10-19, gas 30-39 or AA)", t)
	}
	if c.DIOrder != "901F" && c.DIOrder != "1F90" {
		return c, Address{}, bad("DI order %q (want 901F or 1F90)", c.DIOrder)
	}
	if c.Timeout < 0 || c.Timeout > time.Minute {
		return c, Address{}, bad("timeout %v (want up to 1m)", c.Timeout)
	}
	if err := drivers.CheckRetries(c.Retries); err != nil {
		return c, Address{}, fmt.Errorf("cjt188: device %q: %w", c.Device, err)
	}
	if c.Location == nil {
		return c, Address{}, bad("reading the meter clock needs its time zone (Config.Location)")
	}
	if c.Preamble > 16 {
		return c, Address{}, bad("preamble of %d FE bytes (want at most 16)", c.Preamble)
	}
	if c.Gap < 0 || c.Gap > 10*time.Second {
		return c, Address{}, bad("gap %v (want up to 10s)", c.Gap)
	}
	if c.Class > drivers.Evidence {
		return c, Address{}, bad("class %d", c.Class)
	}
	return c, addr, nil
}

// Meter is a CJ/T 188 water meter on a serial line. It is used by one
// goroutine at a time, the owner of the line.
type Meter struct {
	cfg  Config
	addr Address
	port hardware.Port
	log  *slog.Logger
	ser  byte // SER of the next request: 00, 01, … then wraps
}

var (
	_ drivers.Poller      = (*Meter)(nil)
	_ drivers.FrameGapper = (*Meter)(nil)
)

// FrameGap is the silence the meter needs before each request
// (Config.Gap): the line's owner keeps it.
func (m *Meter) FrameGap() time.Duration { return m.cfg.Gap }

// New checks the configuration and returns a meter. It does no I/O.
func New(c Config, p hardware.Port) (*Meter, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: cjt188: device %q: no port", drivers.ErrConfig, c.Device)
	}
	c, addr, err := c.check()
	if err != nil {
		return nil, err
	}
	return &Meter{cfg: c, addr: addr, port: p, log: c.Logger.With("device", c.Device)}, nil
}

// Poll reads the 901F record and appends one Reading: flow_m3,
// settle_flow_m3, valve, battery_low, status_raw and, when the meter has
// a clock, meter_time and clock_offset_s. A value that cannot be read
// (e.g. a heat unit) is left out and named in the error.
func (m *Meter) Poll(ctx context.Context, dst []drivers.Reading) ([]drivers.Reading, error) {
	start := m.cfg.Now()
	f, now, err := m.exchange(ctx, m.cfg.MeterType, m.addr, FuncRead, DIMeterData)
	if err != nil {
		return dst, fmt.Errorf("cjt188: %s: read 901F: %w", m.cfg.Device, err)
	}
	d, err := ParseMeterData(f.Data)
	if err != nil {
		return dst, fmt.Errorf("cjt188: %s: %w", m.cfg.Device, err)
	}
	vals, err := d.Values(m.cfg.Location, now)
	if err != nil {
		err = fmt.Errorf("cjt188: %s: %w", m.cfg.Device, err)
	}
	return append(dst, drivers.Reading{Device: m.cfg.Device, Class: m.cfg.Class, Time: start, Values: vals}), err
}

// ReadAddress asks the one meter on the bus for its address: C=0x03, DI
// 810A, type AA and the wildcard address. It returns the 14-digit address
// and the meter type of the reply.
func (m *Meter) ReadAddress(ctx context.Context) (addr string, meterType byte, err error) {
	wild, _ := ParseAddress(WildcardAddress)
	f, _, err := m.exchange(ctx, TypeAny, wild, FuncReadAddress, DIReadAddr)
	if err != nil {
		return "", 0, fmt.Errorf("cjt188: read address (810A via wildcard): %w", err)
	}
	return f.Addr.String(), f.Type, nil
}

// exchange sends one read (DI + a new SER per attempt) and returns the
// matching reply and the gateway time it arrived. Replies with another SER
// (late replies to earlier requests) are discarded while waiting.
func (m *Meter) exchange(ctx context.Context, typ byte, addr Address, fn byte, di uint16) (Frame, time.Time, error) {
	var last error
	for attempt := 0; attempt <= m.cfg.Retries; attempt++ {
		if err := ctx.Err(); err != nil {
			return Frame{}, time.Time{}, err
		}
		ser := m.ser
		m.ser++
		req := Frame{Preamble: m.cfg.Preamble, Type: typ, Addr: addr, Control: fn,
			Data: append(diBytes(di, m.cfg.DIOrder), ser)}
		f, err := m.once(ctx, req, di)
		if err == nil {
			return f, m.cfg.Now(), nil
		}
		if ctx.Err() != nil || !retryable(err) {
			return f, time.Time{}, err
		}
		last = err
		m.log.Debug("cjt188: no good reply", "attempt", attempt+1, "of", m.cfg.Retries+1, "err", err)
	}
	if m.cfg.Retries > 0 {
		return Frame{}, time.Time{}, fmt.Errorf("%d attempts: %w", m.cfg.Retries+1, last)
	}
	return Frame{}, time.Time{}, last
}

func retryable(err error) bool {
	return errors.Is(err, drivers.ErrTimeout) || errors.Is(err, drivers.ErrFrame) ||
		errors.Is(err, ErrWrongAddress) || errors.Is(err, ErrUnexpected)
}

func (m *Meter) once(ctx context.Context, req Frame, di uint16) (Frame, error) {
	ser := req.Data[2]
	late := 0
	split := func(buf []byte) (int, int, error) {
		skip, n, err := Split(buf)
		if n == 0 {
			return skip, n, err
		}
		if buf[9]&CtrlReply == 0 {
			return n, 0, nil // our own request, echoed by the converter
		}
		if l := int(buf[10]); l >= 3 && buf[headerLen+2] != ser {
			late++ // a late reply to an earlier request: keep waiting
			return n, 0, nil
		}
		return 0, n, nil
	}
	b, err := serialio.Transact(ctx, m.port, Encode(req), m.cfg.Timeout, split)
	if late > 0 {
		m.log.Debug("cjt188: discarded late replies", "count", late, "ser", ser)
		if err != nil {
			return Frame{}, fmt.Errorf("%w: %d discarded, none with SER %02X: %w", ErrLateReply, late, ser, err)
		}
	}
	if err != nil {
		return Frame{}, err
	}
	f, err := Decode(b)
	if err != nil {
		return Frame{}, fmt.Errorf("%w: %w", drivers.ErrFrame, err)
	}
	if !req.Addr.Matches(f.Addr) {
		return Frame{}, fmt.Errorf("%w: asked %s, answered by %s", ErrWrongAddress, req.Addr, f.Addr)
	}
	if f.Function() != req.Function() {
		return Frame{}, fmt.Errorf("%w: reply control %02X to request %02X", ErrUnexpected, f.Control, req.Control)
	}
	if err := f.Err(); err != nil {
		return f, err
	}
	if !hasDI(f.Data, di) || len(f.Data) < 3 {
		return Frame{}, fmt.Errorf("%w: reply DATA % X does not start with DI %04X and SER", ErrUnexpected, f.Data, di)
	}
	return f, nil
}

// MaxTurnaround is how long a battery meter behind an M-Bus converter may
// take to answer (protocols.md §3.3 gives timeouts of 1.5-2 s; wake-up and
// the converter take most of it).
const MaxTurnaround = time.Second

// maxFrame bounds a 901F request or reply: 4 FE, 13 bytes of header and
// trailer, and up to 3 + 19 bytes of data.
const maxFrame = 4 + 13 + 22

// MinTimeout is the shortest timeout that can work on a line at m: a
// request and its reply on the wire, plus MaxTurnaround.
func MinTimeout(m hardware.Mode) time.Duration {
	return m.WireTime(2*maxFrame) + MaxTurnaround
}
