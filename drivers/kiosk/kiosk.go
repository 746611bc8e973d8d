package kiosk

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/internal/fieldmsg"
)

// Defaults.
const (
	DefaultWindow = time.Minute
	// TicketTTL: a ticket not heard of for this long is forgotten (a hall
	// works by the day; ticket numbers restart each morning).
	TicketTTL = 24 * time.Hour
	// MaxTickets and MaxServices bound the in-memory state; beyond them new
	// tickets or services are not tracked for metrics (their events are
	// still decoded and emitted).
	MaxTickets  = 100000
	MaxServices = 1000
)

// Config describes one kiosk (a hall's queue system).
type Config struct {
	// Device is the device id from the gateway's config.
	Device string
	// WaitAlarm: a ticket that has waited longer than this without being
	// called makes a long_wait event (see LongWaits); 0 = off.
	WaitAlarm time.Duration
	// Window is the metrics period (default 1 minute).
	Window time.Duration
	// Now is the gateway's clock (nil = time.Now).
	Now func() time.Time
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Device == "":
		return fmt.Errorf("%w: kiosk: device id is empty", drivers.ErrConfig)
	case c.WaitAlarm < 0:
		return fmt.Errorf("%w: kiosk %s: wait alarm %v is negative", drivers.ErrConfig, c.Device, c.WaitAlarm)
	case c.Window < 0 || c.Window > 0 && c.Window < time.Second:
		return fmt.Errorf("%w: kiosk %s: window %v: want at least 1s (0 = default 1m)", drivers.ErrConfig, c.Device, c.Window)
	}
	return nil
}

// Kiosk decodes one queue system's messages and derives per-service
// metrics from them. Decode and Run (or Metrics and LongWaits) may be called
// from different goroutines.
type Kiosk struct {
	device    string
	waitAlarm time.Duration
	window    time.Duration
	now       func() time.Time

	mu       sync.Mutex
	tickets  map[string]*ticket
	services map[string]*service
	windows  map[string]*counter
	over     bool // tickets over WaitAlarm were waiting at the last LongWaits (true at first)
}

// ticket is what the kiosk remembers of one ticket.
type ticket struct {
	service  string
	queued   time.Time // gateway clock: entered its current queue
	queuedMs int64     // device clock: issued_at, or the transfer time
	waiting  bool      // not yet called in its current queue
	alarmed  bool
	started  int64 // device ms of service.started, 0 if none
	seen     time.Time
}

// sample is one value observed at a gateway time.
type sample struct {
	at time.Time
	v  int64
}

// service holds the samples of the current window for one service.
type service struct {
	waits   []sample // ms
	done    []sample
	ratings []sample
}

// counter is one service window (a desk).
type counter struct {
	open     bool
	services []string // declared in window.status; none = serves every service
	seen     time.Time
}

var _ drivers.Source = (*Kiosk)(nil)

// New returns a kiosk. It does no I/O.
func New(c Config) (*Kiosk, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	k := &Kiosk{
		device: c.Device, waitAlarm: c.WaitAlarm, window: c.Window, now: c.Now, over: true,
		tickets: map[string]*ticket{}, services: map[string]*service{}, windows: map[string]*counter{},
	}
	if k.window == 0 {
		k.window = DefaultWindow
	}
	if k.now == nil {
		k.now = time.Now
	}
	return k, nil
}

// Events returns the topic levels Decode understands.
func Events() []string {
	return []string{
		"ticket.issued", "ticket.called", "ticket.transferred", "ticket.skipped",
		"service.started", "service.finished", "service.rated", "window.status", "device.status",
	}
}

const (
	maxText     = 256
	maxEventLen = 64 // an unknown event is named in the error up to this
)

// Decode turns one message into readings and updates the metrics state.
// event is the topic's last level; payload is a JSON object or a CBOR map,
// the gw.v1 envelope or the bare payload. There is no size limit: the
// field broker's max_payload is the only one. A refused message leaves the
// state untouched.
func (k *Kiosk) Decode(event string, payload []byte) ([]drivers.Reading, error) {
	if !slices.Contains(Events(), event) {
		return nil, &FieldError{Device: k.device, Event: strconv.Quote(fieldmsg.Clip(event, maxEventLen)), Reason: "unknown event", Err: ErrUnknownEvent}
	}
	top, _, err := fieldmsg.Parse(payload)
	if err != nil {
		return nil, &FieldError{Device: k.device, Event: event, Reason: err.Error(), Err: ErrMalformed}
	}
	if path, why := findPersonalData(top, ""); path != "" {
		// Never echo the value: errors end up in logs.
		return nil, &FieldError{Device: k.device, Event: event, Field: path, Value: "<redacted>", Reason: why, Err: ErrPersonalData}
	}
	env, err := fieldmsg.ReadEnvelope[driver](top, k.device, event, "queue")
	if err != nil {
		return nil, err
	}
	now := k.now()
	skew := fieldmsg.NewSkew(now)
	if env.HasTS {
		skew.Message(env.TS)
	}
	body, ts, hasTS := env.Body, env.TS, env.HasTS && fieldmsg.Plausible(env.TS)
	if n := body.Obj["citizen_ref"]; n != nil && n.Kind != fieldmsg.KindNull && (n.Kind != fieldmsg.KindStr || !isHashRef(n.Text)) {
		return nil, &FieldError{Device: k.device, Event: event, Field: "citizen_ref", Value: "<redacted>", Reason: "must be a hash of 32 to 128 hex digits, never a raw identifier", Err: ErrPersonalData}
	}
	m := &msg{k: k, f: body, event: event, now: now, ts: ts, hasTS: hasTS, skew: skew,
		rd: drivers.Reading{Device: k.device, Class: drivers.Event, Values: map[string]drivers.Value{}}}
	if hasTS {
		m.rd.Time, m.rd.DeviceTime = time.UnixMilli(ts).UTC(), true
	}
	if env.MsgID != "" {
		m.rd.Values["msg_id"] = drivers.Text(env.MsgID)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := m.decode(); err != nil {
		return nil, err
	}
	if !m.lastWill {
		skew.Mark(&m.rd)
	}
	m.commit()
	return []drivers.Reading{m.rd}, nil
}

// label reads an identifier given as text or as a whole number.
func label(f *fields, name string, required bool) (string, bool) {
	n := f.Get(name, required)
	if n == nil {
		return "", false
	}
	if n.Kind == fieldmsg.KindNum {
		v, err := fieldmsg.ParseInteger(n.Text)
		if err != nil || v < 0 {
			f.Fail(ErrSchema, name, n, "want a text or a non-negative whole number")
			return "", false
		}
		return strconv.FormatInt(v, 10), true
	}
	return f.Text(name, required, 64)
}

// msg is one message being decoded: the reading under construction and
// the state changes to commit once the whole message is valid.
type msg struct {
	k      *Kiosk
	f      *fields
	event  string
	now    time.Time
	ts     int64
	hasTS  bool // ts is present and plausible
	skew   *fieldmsg.Skew
	rd     drivers.Reading
	commit func()
	// lastWill: a device.status online:false, stamped by the gateway and
	// not judged for clock skew.
	lastWill bool
	invalid  []string // see flagInvalid
}

// flagInvalid leaves a derived point out instead of refusing the message:
// the point and why are named in the "invalid" point and the reading is
// flagged drivers.QualityInvalidFields.
func (m *msg) flagInvalid(point, why string) {
	m.invalid = append(m.invalid, point+": "+why)
	m.rd.Quality |= drivers.QualityInvalidFields
	m.put("invalid", drivers.Text(strings.Join(m.invalid, "; ")))
}

func (m *msg) put(point string, v drivers.Value) { m.rd.Values[point] = v }

func (m *msg) putText(point string) func(string, bool) {
	return func(s string, ok bool) {
		if ok {
			m.put(point, drivers.Text(s))
		}
	}
}

func (m *msg) putInt(point string) func(int64, bool) {
	return func(i int64, ok bool) {
		if ok {
			m.put(point, drivers.Int(i))
		}
	}
}

// when reads the event's own time field, falling back to the message ts
// and then to the gateway's clock; device ms.
func (m *msg) when(name string) int64 {
	if ms, ok := m.f.Instant(name, false); ok {
		if !m.hasTS { // no envelope ts: the event's own time stamps the reading
			m.rd.Time, m.rd.DeviceTime = time.UnixMilli(ms).UTC(), true
			m.skew.Message(ms)
		} else {
			m.skew.Event(ms)
		}
		return ms
	}
	if m.hasTS {
		return m.ts
	}
	return m.now.UnixMilli()
}

// serviceOf reads business_type, else queue_id.
func (m *msg) serviceOf(required bool) (string, bool) {
	if s, ok := label(m.f, "business_type", false); ok {
		return s, true
	}
	if s, ok := label(m.f, "queue_id", false); ok {
		return s, true
	}
	if required {
		m.f.Fail(ErrSchema, "business_type", nil, "missing, and no queue_id either (one is required)")
	}
	return "", false
}

func seconds(ms int64) drivers.Value { return drivers.Dec(ms, -3) }

// decode validates the message, fills m.rd and prepares m.commit. Called
// with k.mu held; it must not change state itself.
func (m *msg) decode() error {
	m.commit = func() {}
	switch m.event {
	case "ticket.issued":
		return m.ticketIssued()
	case "ticket.called":
		return m.ticketCalled()
	case "ticket.transferred":
		return m.ticketTransferred()
	case "ticket.skipped":
		return m.ticketSkipped()
	case "service.started", "service.finished":
		return m.serviceEvent()
	case "service.rated":
		return m.serviceRated()
	case "window.status":
		return m.windowStatus()
	case "device.status":
		return m.deviceStatus()
	}
	return m.f.Err()
}

// ticketIssued reads a ticket.issued.
func (m *msg) ticketIssued() error {
	k, f := m.k, m.f
	no, _ := label(f, "ticket_no", true)
	svc, _ := m.serviceOf(true)
	at := m.when("issued_at")
	m.put("event", drivers.Text("ticket_issued"))
	m.putText("channel")(f.Enum("channel", false, "kiosk", "wechat", "appointment", "web", "app"))
	m.putText("priority")(f.Enum("priority", false, "normal", "elderly", "disabled", "vip"))
	m.putInt("waiting_ahead")(f.Int("waiting_ahead", false, 0, 1<<31))
	if f.Err() != nil {
		return f.Err()
	}
	m.put("ticket", drivers.Text(no))
	m.put("service", drivers.Text(svc))
	m.commit = func() {
		if k.track(svc) {
			k.enqueue(no, svc, at, m.now)
		}
	}
	return f.Err()
}

// ticketCalled reads a ticket.called: wait_s on the first call.
func (m *msg) ticketCalled() error {
	k, f := m.k, m.f
	no, _ := label(f, "ticket_no", true)
	win, okW := label(f, "window_no", false)
	staff, okS := label(f, "staff_id", false)
	calls, okC := f.Int("call_count", false, 1, 1000)
	svc, okSvc := m.serviceOf(false)
	at := m.when("called_at")
	if f.Err() != nil {
		return f.Err()
	}
	m.put("event", drivers.Text("ticket_called"))
	m.put("ticket", drivers.Text(no))
	m.putText("window")(win, okW)
	m.putText("staff")(staff, okS)
	m.putInt("call_count")(calls, okC)
	t := k.tickets[no]
	if !okSvc && t != nil {
		svc, okSvc = t.service, true
	}
	m.putText("service")(svc, okSvc)
	first := t != nil && t.waiting && (!okC || calls == 1)
	wait := int64(0)
	if first {
		wait = at - t.queuedMs
	}
	if first && wait < 0 {
		// Two clocks disagree (a time missing from one message was
		// taken from the gateway's): the call happened all the same.
		m.flagInvalid("wait_s", fmt.Sprintf("called %d ms before the ticket was issued", -wait))
		m.commit = func() { t.waiting, t.seen = false, m.now }
	} else if first {
		m.put("wait_s", seconds(wait))
		m.commit = func() {
			t.waiting = false
			t.seen = m.now
			if s := k.services[t.service]; s != nil {
				s.waits = append(s.waits, sample{m.now, wait})
			}
		}
	} else if t != nil {
		m.commit = func() { t.waiting, t.seen = false, m.now }
	}
	return f.Err()
}

// ticketTransferred reads a ticket.transferred: the ticket waits again in its new queue.
func (m *msg) ticketTransferred() error {
	k, f := m.k, m.f
	no, _ := label(f, "ticket_no", true)
	from, okF := label(f, "from_window", false)
	to, _ := label(f, "to_queue", true)
	reason, okR := f.Text("reason", false, maxText)
	at := m.when("transferred_at")
	if f.Err() != nil {
		return f.Err()
	}
	m.put("event", drivers.Text("ticket_transferred"))
	m.put("ticket", drivers.Text(no))
	m.put("service", drivers.Text(to))
	m.putText("window")(from, okF)
	m.putText("reason")(reason, okR)
	m.commit = func() {
		// The ticket waits again, in its new queue, from now on.
		if k.track(to) {
			alarmed := false
			if t := k.tickets[no]; t != nil {
				alarmed = t.alarmed
			}
			k.enqueue(no, to, at, m.now)
			if t := k.tickets[no]; t != nil { // nil when MaxTickets is reached
				t.alarmed = alarmed
			}
		}
	}
	return f.Err()
}

// ticketSkipped reads a ticket.skipped: the ticket stops waiting.
func (m *msg) ticketSkipped() error {
	k, f := m.k, m.f
	no, _ := label(f, "ticket_no", true)
	win, okW := label(f, "from_window", false)
	if !okW {
		win, okW = label(f, "window_no", false)
	}
	reason, okR := f.Text("reason", false, maxText)
	if f.Err() != nil {
		return f.Err()
	}
	m.put("event", drivers.Text("ticket_skipped"))
	m.put("ticket", drivers.Text(no))
	m.putText("window")(win, okW)
	m.putText("reason")(reason, okR)
	if t := k.tickets[no]; t != nil {
		m.put("service", drivers.Text(t.service))
		m.commit = func() { t.waiting, t.seen = false, m.now }
	}
	return f.Err()
}

// serviceEvent reads a service.started or service.finished.
func (m *msg) serviceEvent() error {
	k, f := m.k, m.f
	no, _ := label(f, "ticket_no", true)
	m.common()
	svc, okSvc := m.serviceOf(false)
	t := k.tickets[no]
	if !okSvc && t != nil {
		svc, okSvc = t.service, true
	}
	if m.event == "service.started" {
		at := m.when("started_at")
		if f.Err() != nil {
			return f.Err()
		}
		m.put("event", drivers.Text("service_started"))
		m.put("ticket", drivers.Text(no))
		m.putText("service")(svc, okSvc)
		if t != nil {
			m.commit = func() { t.started, t.seen, t.waiting = at, m.now, false }
		}
		return f.Err()
	}
	m.putText("result")(f.Enum("result", false, "done", "incomplete", "rejected"))
	handle, okH := f.Decimal("service_s", false, fieldmsg.Bound{Lo: "0", Hi: "604800"})
	end := m.when("finished_at")
	if !okH && f.Err() == nil {
		start, okStart := f.Instant("started_at", false)
		if okStart {
			m.skew.Event(start)
		} else if t != nil && t.started != 0 {
			start, okStart = t.started, true
		}
		switch {
		case okStart && end < start:
			// The service happened; only its length is unknown.
			m.flagInvalid("handle_s", fmt.Sprintf("finished %d ms before the service started", start-end))
		case okStart:
			handle, okH = seconds(end-start), true
		}
	}
	if f.Err() != nil {
		return f.Err()
	}
	m.put("event", drivers.Text("service_done"))
	m.put("ticket", drivers.Text(no))
	m.putText("service")(svc, okSvc)
	if okH {
		m.put("handle_s", handle)
	}
	if okSvc {
		m.commit = func() {
			if s := k.services[svc]; s != nil {
				s.done = append(s.done, sample{at: m.now})
			}
			if t != nil {
				t.seen = m.now
			}
		}
	}
	return f.Err()
}

// serviceRated reads a service.rated.
func (m *msg) serviceRated() error {
	k, f := m.k, m.f
	no, okNo := label(f, "ticket_no", false)
	m.common()
	timeout, _ := f.Bool("timeout", false)
	rating, okR := f.Int("rating", !timeout, 1, 5)
	var reasons []string
	if n := f.Get("reasons", okR && rating <= 2); n != nil {
		if n.Kind != fieldmsg.KindArr || len(n.Arr) == 0 || len(n.Arr) > 32 {
			f.Fail(ErrSchema, "reasons", n, "want a non-empty array of reason codes")
		}
		for i, e := range n.Arr {
			if e.Kind != fieldmsg.KindStr || e.Text == "" || len(e.Text) > 64 || !fieldmsg.Printable(e.Text) || strings.Contains(e.Text, ",") {
				f.Fail(ErrSchema, "reasons["+strconv.Itoa(i)+"]", e, "want a reason code (1–64 characters, no comma)")
				break
			}
			reasons = append(reasons, e.Text)
		}
	}
	dims := map[string]int64{}
	if n := f.Typed("dimensions", false, fieldmsg.KindObj); n != nil {
		d := f.Nested("dimensions", n.Obj)
		for _, name := range []string{"overall", "efficiency", "level", "attitude"} {
			if v, ok := d.Int(name, false, 1, 5); ok {
				dims[name] = v
			}
		}
	}
	svc, okSvc := m.serviceOf(false)
	if f.Err() != nil {
		return f.Err()
	}
	var t *ticket
	if okNo {
		t = k.tickets[no]
		m.put("ticket", drivers.Text(no))
	}
	if !okSvc && t != nil {
		svc, okSvc = t.service, true
	}
	m.put("event", drivers.Text("rated"))
	m.putText("service")(svc, okSvc)
	if timeout {
		m.put("timeout", drivers.Bool(true))
	}
	if okR {
		m.put("rating", drivers.Int(rating))
	}
	for name, v := range dims {
		m.put("rating_"+name, drivers.Int(v))
	}
	if len(reasons) > 0 {
		m.put("reasons", drivers.Text(strings.Join(reasons, ",")))
	}
	if okR && okSvc {
		m.commit = func() {
			if s := k.services[svc]; s != nil {
				s.ratings = append(s.ratings, sample{m.now, rating})
			}
		}
	}
	return f.Err()
}

// windowStatus reads a window.status.
func (m *msg) windowStatus() error {
	k, f := m.k, m.f
	win, _ := label(f, "window_no", true)
	state, _ := f.Enum("state", true, "open", "paused", "closed")
	staff, okS := label(f, "staff_id", false)
	var svcs []string
	if n := f.Typed("services", false, fieldmsg.KindArr); n != nil {
		for i, e := range n.Arr {
			if e.Kind != fieldmsg.KindStr || e.Text == "" || len(e.Text) > 64 || !fieldmsg.Printable(e.Text) {
				f.Fail(ErrSchema, "services["+strconv.Itoa(i)+"]", e, "want a service name")
				break
			}
			svcs = append(svcs, e.Text)
		}
	} else if s, ok := m.serviceOf(false); ok {
		svcs = []string{s}
	}
	if f.Err() != nil {
		return f.Err()
	}
	m.put("event", drivers.Text("window_status"))
	m.put("window", drivers.Text(win))
	m.put("state", drivers.Text(state))
	m.putText("staff")(staff, okS)
	m.commit = func() {
		if _, ok := k.windows[win]; !ok && len(k.windows) >= MaxServices {
			return
		}
		for _, s := range svcs {
			k.track(s)
		}
		k.windows[win] = &counter{open: state == "open", services: svcs, seen: m.now}
	}
	return f.Err()
}

// deviceStatus reads a device.status; online:false is the last will.
func (m *msg) deviceStatus() error {
	f := m.f
	online, ok := f.Bool("online", false)
	if ok && !online {
		// A last will is composed at connect time: the gateway stamps it.
		m.rd.Time, m.rd.DeviceTime, m.lastWill = time.Time{}, false, true
		m.put("event", drivers.Text("offline"))
		return f.Err()
	}
	m.rd.Class = drivers.Telemetry
	m.put("online", drivers.Bool(true))
	m.putText("printer_paper")(f.Enum("printer_paper", false, "ok", "low", "out"))
	m.putText("screen")(f.Text("screen", false, 64))
	m.putText("firmware")(f.Text("firmware", false, 64))
	return f.Err()
}

// common reads the fields service.* events share.
func (m *msg) common() {
	f := m.f
	m.putText("window")(label(f, "window_no", false))
	m.putText("staff")(label(f, "staff_id", false))
	m.putText("matter_code")(f.Text("matter_code", false, 64))
	m.putText("case_no")(f.Text("case_no", false, 64))
}

// track makes sure a service exists; false when the cap is reached.
func (k *Kiosk) track(svc string) bool {
	if _, ok := k.services[svc]; ok {
		return true
	}
	if len(k.services) >= MaxServices {
		return false
	}
	k.services[svc] = &service{}
	return true
}

func (k *Kiosk) enqueue(no, svc string, atMs int64, now time.Time) {
	if _, ok := k.tickets[no]; !ok && len(k.tickets) >= MaxTickets {
		return
	}
	k.tickets[no] = &ticket{service: svc, queued: now, queuedMs: atMs, waiting: true, seen: now}
}

// Stream is the class a message of event belongs to, known before it is
// decoded (see recorder.Stream). Unknown events are events.
func Stream(event string) drivers.Class {
	if event == "device.status" {
		return drivers.Telemetry
	}
	return drivers.Event
}
