package dlt645

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/serialio"
	"github.com/townlink/townlink/hardware"
)

// Defaults, in one place.
const (
	DefaultTimeout  = 1500 * time.Millisecond // per request (protocols.md §1.4: 1–2 s)
	DefaultRetries  = 2                       // see drivers.CheckRetries for what a count means
	DefaultPreamble = 4
	// DefaultGap is the silence kept on the line before every request: a
	// meter may answer Td ≥ 20 ms after a request (protocols.md §1.4), and
	// giving it the same 20 ms back after its reply is the shortest pause
	// the standard's timing justifies (the "≥ 50 ms" of gateway practice is
	// no rule of the standard; see gateway/bus's BenchmarkLineOwner32Meters).
	DefaultGap = 20 * time.Millisecond
)

// maxValue bounds what follow-up frames may add up to.
const maxValue = 4096

// DefaultMode is the usual serial framing of a version's meters: 2400 8E1
// for 2007, 1200 8E1 for 1997.
func DefaultMode(v Version) hardware.Mode {
	if v == V1997 {
		return hardware.Mode{Baud: 1200, Parity: hardware.ParityEven}
	}
	return hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}
}

// Config describes one meter on a line.
type Config struct {
	Device  string // device id, names the meter in readings and errors
	Address string // 12 digits high first, e.g. "218231000114"; AA bytes are wildcards
	Version Version
	// Points are contract point names; empty means StandardPoints(Version),
	// the one default read set (gateway/config asks it too).
	// meter_time and clock_offset_s read the meter clock (two more requests).
	Points []string
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
	// Location is the zone of the meter clock (DL/T 645 date and time
	// registers are local time). Required when meter_time or
	// clock_offset_s is read; the process's zone (time.Local) is never
	// used.
	Location *time.Location
	// Now is the gateway clock; nil means time.Now.
	Now func() time.Time
	// Logger receives debug records about retries; nil discards them.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if len(c.Points) == 0 {
		c.Points = StandardPoints(c.Version)
	}
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
	_, _, _, err := c.check()
	return err
}

func (c Config) check() (Config, Address, []read, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: dlt645: device %q: %s", drivers.ErrConfig, c.Device, fmt.Sprintf(format, a...))
	}
	if c.Device == "" {
		return c, Address{}, nil, bad("no device id")
	}
	if !c.Version.valid() {
		return c, Address{}, nil, bad("version %d (want V2007 or V1997)", c.Version)
	}
	addr, err := ParseAddress(c.Address)
	if err != nil {
		return c, Address{}, nil, bad("address: %v", err)
	}
	if addr.IsBroadcast() {
		return c, Address{}, nil, bad("address %s is the broadcast address: meters do not answer it", addr)
	}
	c = c.withDefaults()
	if c.Timeout < 0 || c.Timeout > time.Minute {
		return c, Address{}, nil, bad("timeout %v (want up to 1m)", c.Timeout)
	}
	if err := drivers.CheckRetries(c.Retries); err != nil {
		return c, Address{}, nil, fmt.Errorf("dlt645: device %q: %w", c.Device, err)
	}
	if c.Preamble > 16 {
		return c, Address{}, nil, bad("preamble of %d FE bytes (want at most 16)", c.Preamble)
	}
	if c.Gap < 0 || c.Gap > 10*time.Second {
		return c, Address{}, nil, bad("gap %v (want up to 10s)", c.Gap)
	}
	if c.Class > drivers.Evidence {
		return c, Address{}, nil, bad("class %d", c.Class)
	}
	for i, p := range c.Points {
		if slices.Contains(c.Points[:i], p) {
			return c, Address{}, nil, bad("point %q listed twice", p)
		}
	}
	reads, _, err := plan(c.Version, c.Points)
	if err != nil {
		return c, Address{}, nil, fmt.Errorf("device %q: %w", c.Device, err)
	}
	if c.Location == nil && (slices.Contains(c.Points, PointMeterTime) || slices.Contains(c.Points, PointClockOffset)) {
		return c, Address{}, nil, bad("reading the meter clock needs its time zone (Config.Location)")
	}
	return c, addr, reads, nil
}

// Meter is a DL/T 645 meter on a serial line. It is used by one goroutine
// at a time, the owner of the line.
type Meter struct {
	cfg   Config
	addr  Address
	port  hardware.Port
	reads []read
	clock bool
	want  map[string]bool
	log   *slog.Logger
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
		return nil, fmt.Errorf("%w: dlt645: device %q: no port", drivers.ErrConfig, c.Device)
	}
	c, addr, reads, err := c.check()
	if err != nil {
		return nil, err
	}
	m := &Meter{cfg: c, addr: addr, port: p, reads: reads, want: map[string]bool{},
		log: c.Logger.With("device", c.Device)}
	for _, pt := range c.Points {
		m.want[pt] = true
	}
	m.clock = m.want[PointMeterTime] || m.want[PointClockOffset]
	return m, nil
}

// Poll reads every configured point and appends one Reading. An item the
// meter does not have (abnormal reply, ErrNoData) is skipped and named in
// the returned error, next to the reading of the other points. Absent
// values (FF bytes) are left out without error. When the meter answers
// nothing at all, Poll stops at the first item instead of waiting out
// every item's timeouts.
func (m *Meter) Poll(ctx context.Context, dst []drivers.Reading) ([]drivers.Reading, error) {
	start := m.cfg.Now()
	vals := map[string]drivers.Value{}
	var errs []error
	answered := false
	for _, r := range m.reads {
		err := m.pollRead(ctx, r, vals, &answered)
		if err == nil {
			continue
		}
		errs = append(errs, err)
		if ctx.Err() != nil || (!answered && errors.Is(err, drivers.ErrTimeout)) {
			return m.appendReading(dst, start, vals), errors.Join(errs...)
		}
	}
	if m.clock {
		if err := m.readClock(ctx, vals); err != nil {
			errs = append(errs, fmt.Errorf("dlt645: %s: meter clock: %w", m.cfg.Device, err))
		}
	}
	return m.appendReading(dst, start, vals), errors.Join(errs...)
}

func (m *Meter) appendReading(dst []drivers.Reading, t time.Time, vals map[string]drivers.Value) []drivers.Reading {
	if len(vals) == 0 {
		return dst
	}
	return append(dst, drivers.Reading{Device: m.cfg.Device, Class: m.cfg.Class, Time: t, Values: vals})
}

func (m *Meter) pollRead(ctx context.Context, r read, vals map[string]drivers.Value, answered *bool) error {
	data, err := m.readItem(ctx, m.addr, r.item)
	var ab *AbnormalError
	if errors.As(err, &ab) {
		*answered = true
	}
	if err != nil && len(r.fallback) > 0 && errors.Is(err, ErrNoData) && ctx.Err() == nil {
		m.log.Debug("dlt645: block refused, reading single items", "di", r.item.DIString(m.cfg.Version))
		return m.pollSingles(ctx, r.fallback, vals, answered)
	}
	if err != nil {
		return fmt.Errorf("dlt645: %s: read %s (%s): %w", m.cfg.Device, r.item.DIString(m.cfg.Version), r.item.Name, err)
	}
	*answered = true
	got, err := r.item.Values(data)
	if err != nil && len(r.fallback) > 0 && ctx.Err() == nil {
		// Some meters answer a block with fewer values than it has: read
		// the items one by one instead.
		m.log.Debug("dlt645: block reply does not fit, reading single items", "di", r.item.DIString(m.cfg.Version), "err", err)
		return m.pollSingles(ctx, r.fallback, vals, answered)
	}
	if err != nil {
		return fmt.Errorf("dlt645: %s: %s: %w", m.cfg.Device, r.item.DIString(m.cfg.Version), err)
	}
	for k, v := range got {
		if m.want[k] {
			vals[k] = v
		}
	}
	return nil
}

func (m *Meter) pollSingles(ctx context.Context, items []Item, vals map[string]drivers.Value, answered *bool) error {
	var errs []error
	for _, it := range items {
		if err := m.pollRead(ctx, read{item: it}, vals, answered); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// readClock reads the date and time items and sets meter_time (RFC 3339
// in Config.Location) and clock_offset_s (meter − gateway, seconds). The
// date is read again when the time is just past midnight, so a day change
// between the two requests cannot shift the result by a day.
func (m *Meter) readClock(ctx context.Context, vals map[string]drivers.Value) error {
	dateDI, timeDI := uint32(0x04000101), uint32(0x04000102)
	if m.cfg.Version == V1997 {
		dateDI, timeDI = 0xC010, 0xC011
	}
	dateItem, _ := Lookup(m.cfg.Version, dateDI)
	timeItem, _ := Lookup(m.cfg.Version, timeDI)
	d, err := m.readItem(ctx, m.addr, dateItem)
	if err != nil {
		return fmt.Errorf("read %s (%s): %w", dateItem.DIString(m.cfg.Version), dateItem.Name, err)
	}
	t, err := m.readItem(ctx, m.addr, timeItem)
	if err != nil {
		return fmt.Errorf("read %s (%s): %w", timeItem.DIString(m.cfg.Version), timeItem.Name, err)
	}
	now := m.cfg.Now()
	h, mi, s, okT, err := DecodeTime(t)
	if err != nil {
		return err
	}
	if okT && h == 0 && mi == 0 {
		if d, err = m.readItem(ctx, m.addr, dateItem); err != nil {
			return fmt.Errorf("read %s again after midnight: %w", dateItem.DIString(m.cfg.Version), err)
		}
	}
	y, mo, dd, okD, err := DecodeDate(d)
	if err != nil {
		return err
	}
	if !okD || !okT {
		return nil // the meter has no clock: absent, not an error
	}
	mt := time.Date(y, mo, dd, h, mi, s, 0, m.cfg.Location)
	if m.want[PointMeterTime] {
		vals[PointMeterTime] = drivers.Text(mt.Format(time.RFC3339))
	}
	if m.want[PointClockOffset] {
		vals[PointClockOffset] = drivers.Int(int64(math.Round(mt.Sub(now).Seconds())))
	}
	return nil
}

func encodeDI(v Version, di uint32) []byte {
	if v == V1997 {
		return []byte{byte(di), byte(di >> 8)}
	}
	return []byte{byte(di), byte(di >> 8), byte(di >> 16), byte(di >> 24)}
}

// readItem reads one item from addr, following 0xB1/0x12 (2007) or
// 0xA1/0x02 (1997) follow-up frames, and returns the value bytes (DATA
// after the DI, follow-ups concatenated).
func (m *Meter) readItem(ctx context.Context, addr Address, it Item) ([]byte, error) {
	v := m.cfg.Version
	di := encodeDI(v, it.DI)
	hasDI := func(f Frame) error {
		if !bytes.HasPrefix(f.Data, di) {
			return fmt.Errorf("reply DATA % X does not start with DI % X", f.Data, di)
		}
		return nil
	}
	f, err := m.exchange(ctx, Frame{Preamble: m.cfg.Preamble, Addr: addr, Control: v.readFunc(), Data: di}, hasDI)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(f.Data[len(di):])
	for seq := 1; f.HasFollowUp(); seq++ {
		if seq > 255 || len(out) > maxValue {
			return nil, fmt.Errorf("%w: more than %d follow-up frames or %d bytes", ErrUnexpected, seq-1, maxValue)
		}
		req := Frame{Preamble: m.cfg.Preamble, Addr: addr, Control: Func97ReadFollow, Data: di}
		check := hasDI
		if v == V2007 {
			req.Control = FuncReadFollow
			req.Data = append(slices.Clone(di), byte(seq))
			check = func(f Frame) error {
				if err := hasDI(f); err != nil {
					return err
				}
				if len(f.Data) < len(di)+1 || f.Data[len(f.Data)-1] != byte(seq) {
					return fmt.Errorf("follow-up reply % X does not end with SEQ %02X", f.Data, byte(seq))
				}
				return nil
			}
		}
		if f, err = m.exchange(ctx, req, check); err != nil {
			return nil, fmt.Errorf("follow-up frame %d: %w", seq, err)
		}
		part := f.Data[len(di):]
		if v == V2007 {
			part = part[:len(part)-1] // SEQ
		}
		out = append(out, part...)
	}
	return out, nil
}

// replySplit is Split that also skips request frames: the echo of our own
// request that some RS-485 converters return.
func replySplit(buf []byte) (skip, n int, err error) {
	skip, n, err = Split(buf)
	if n > 0 && buf[8]&CtrlReply == 0 {
		return n, 0, nil
	}
	return skip, n, err
}

// exchange sends req and returns the reply, retrying after a timeout, a
// bad frame or a reply that does not answer req. check validates a normal
// reply's DATA. An abnormal reply is returned as *AbnormalError at once.
func (m *Meter) exchange(ctx context.Context, req Frame, check func(Frame) error) (Frame, error) {
	raw := Encode(req)
	var last error
	for attempt := 0; attempt <= m.cfg.Retries; attempt++ {
		if err := ctx.Err(); err != nil {
			return Frame{}, err
		}
		f, err := m.once(ctx, raw, req, check)
		if err == nil {
			return f, nil
		}
		if ctx.Err() != nil || !retryable(err) {
			return f, err
		}
		last = err
		m.log.Debug("dlt645: no good reply", "attempt", attempt+1, "of", m.cfg.Retries+1, "err", err)
	}
	if m.cfg.Retries > 0 {
		return Frame{}, fmt.Errorf("%d attempts: %w", m.cfg.Retries+1, last)
	}
	return Frame{}, last
}

func retryable(err error) bool {
	return errors.Is(err, drivers.ErrTimeout) || errors.Is(err, drivers.ErrFrame) ||
		errors.Is(err, ErrWrongAddress) || errors.Is(err, ErrUnexpected)
}

func (m *Meter) once(ctx context.Context, raw []byte, req Frame, check func(Frame) error) (Frame, error) {
	b, err := serialio.Transact(ctx, m.port, raw, m.cfg.Timeout, replySplit)
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
	if check != nil {
		if err := check(f); err != nil {
			return Frame{}, fmt.Errorf("%w: %w", ErrUnexpected, err)
		}
	}
	return f, nil
}

// ReadAddress asks the one meter on the bus for its address through the
// wildcard address: 0x13 in 2007 (the address is the reply's DATA); in
// 1997, which has no 0x13, a read of C032 (meter number), whose reply
// comes from the meter's communication address. With several meters on
// the bus the replies collide.
func (m *Meter) ReadAddress(ctx context.Context) (string, error) {
	wild, _ := ParseAddress(WildcardAddress)
	if m.cfg.Version == V1997 {
		it, _ := Lookup(V1997, 0xC032)
		di := encodeDI(V1997, it.DI)
		f, err := m.exchange(ctx, Frame{Preamble: m.cfg.Preamble, Addr: wild, Control: Func97Read, Data: di}, func(f Frame) error {
			if !bytes.HasPrefix(f.Data, di) {
				return fmt.Errorf("reply DATA % X does not start with DI % X", f.Data, di)
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("dlt645: read address (C032 via wildcard): %w", err)
		}
		return f.Addr.String(), nil
	}
	f, err := m.exchange(ctx, Frame{Preamble: m.cfg.Preamble, Addr: wild, Control: FuncReadAddress}, func(f Frame) error {
		if len(f.Data) != 6 {
			return fmt.Errorf("address reply has %d DATA bytes, want 6", len(f.Data))
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("dlt645: read address (0x13 via wildcard): %w", err)
	}
	return Address(f.Data).String(), nil
}

// TimeSyncFrame returns the broadcast time-sync frame (0x08 to
// 999999999999, DATA ss mm hh DD MM YY) for the instant t as the meters'
// local time in loc (DL/T 645 clocks keep local time; t's own location,
// which may be the process's, is ignored). Both versions use the same
// frame. preamble follows Config.Preamble (0 means DefaultPreamble,
// negative none).
func TimeSyncFrame(v Version, t time.Time, loc *time.Location, preamble int) (Frame, error) {
	if !v.valid() {
		return Frame{}, fmt.Errorf("%w: dlt645: version %d", drivers.ErrConfig, v)
	}
	if loc == nil {
		return Frame{}, fmt.Errorf("%w: dlt645: time sync needs the meters' time zone", drivers.ErrConfig)
	}
	t = t.In(loc)
	if t.Year() < 2000 || t.Year() > 2099 {
		return Frame{}, fmt.Errorf("%w: dlt645: time sync year %d outside 2000-2099", ErrValue, t.Year())
	}
	bcd := func(n int) byte { return byte(n/10<<4 | n%10) }
	switch {
	case preamble == 0:
		preamble = DefaultPreamble
	case preamble < 0:
		preamble = 0
	}
	broadcast, _ := ParseAddress(BroadcastAddress)
	return Frame{
		Preamble: preamble,
		Addr:     broadcast,
		Control:  FuncBroadcastTime,
		Data:     []byte{bcd(t.Second()), bcd(t.Minute()), bcd(t.Hour()), bcd(t.Day()), bcd(int(t.Month())), bcd(t.Year() % 100)},
	}, nil
}

// TimeSync broadcasts t, as local time in loc, to every meter on the line.
// No meter answers, so success means only that the frame was written.
// Meters usually accept small corrections only (often ≤ 5 min, once a
// day).
func TimeSync(ctx context.Context, p hardware.Port, v Version, t time.Time, loc *time.Location, preamble int) error {
	f, err := TimeSyncFrame(v, t, loc, preamble)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := serialio.Transact(ctx, p, Encode(f), 0, nil); err != nil {
		return fmt.Errorf("dlt645: time sync: %w", err)
	}
	return nil
}

// ProbeResult says which protocol version a meter answered.
type ProbeResult struct {
	Version Version
	Address string        // the address the reply came from
	Energy  drivers.Value // energy_kwh; KindNone if refused or absent
	Refused error         // the abnormal reply, if the meter refused the read
}

// Probe finds out which version a meter speaks: a 2007 read (0x11) of
// 00010000, then a 1997 read (0x01) of 9010, each sent once to address
// (empty means the wildcard: one meter on the bus). A normal or abnormal
// reply both count as an answer. timeout and preamble follow Config.
func Probe(ctx context.Context, p hardware.Port, address string, timeout time.Duration, preamble int) (ProbeResult, error) {
	if address == "" {
		address = WildcardAddress
	}
	var errs []error
	for _, v := range []Version{V2007, V1997} {
		energy := uint32(0x00010000)
		if v == V1997 {
			energy = 0x9010
		}
		m, err := New(Config{Device: "probe", Address: address, Version: v, Points: []string{"energy_kwh"},
			Timeout: timeout, Preamble: preamble}, p)
		if err != nil {
			return ProbeResult{}, err
		}
		it, _ := Lookup(v, energy)
		di := encodeDI(v, it.DI)
		f, err := m.exchange(ctx, Frame{Preamble: m.cfg.Preamble, Addr: m.addr, Control: v.readFunc(), Data: di}, nil)
		var ab *AbnormalError
		switch {
		case errors.As(err, &ab):
			return ProbeResult{Version: v, Address: f.Addr.String(), Refused: err}, nil
		case err == nil:
			res := ProbeResult{Version: v, Address: f.Addr.String()}
			if bytes.HasPrefix(f.Data, di) {
				if vals, verr := it.Values(f.Data[len(di):]); verr == nil {
					res.Energy = vals["energy_kwh"]
				}
			}
			return res, nil
		case ctx.Err() != nil:
			return ProbeResult{}, err
		}
		errs = append(errs, fmt.Errorf("%s: %w", v, err))
	}
	return ProbeResult{}, fmt.Errorf("%w: %w", ErrNoAnswer, errors.Join(errs...))
}

// MaxTurnaround is the longest a meter may wait before it answers
// (protocols.md §1.4: 20 ms ≤ Td ≤ 500 ms).
const MaxTurnaround = 500 * time.Millisecond

// maxReplyFrame bounds the frames of a read of the standard points: 4 FE,
// 12 bytes of header and trailer, 4 bytes of DI and up to 48 of data.
const maxReplyFrame = 4 + 12 + 4 + 48

// MinTimeout is the shortest timeout that can work on a line at m: a
// request and the longest reply of a standard read on the wire, plus
// MaxTurnaround.
func MinTimeout(m hardware.Mode) time.Duration {
	req := len(Encode(Frame{Preamble: DefaultPreamble, Control: FuncRead, Data: make([]byte, 4)}))
	return m.WireTime(req+maxReplyFrame) + MaxTurnaround
}
