package kiosksim

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/townlink/townlink/firmware-sim/internal/fielddev"
)

// Service is one business type with its own queue.
type Service struct {
	Name        string        // business_type
	Prefix      string        // ticket letter
	PerHour     float64       // Poisson arrival rate
	MeanService time.Duration // exponential service time
}

// Window is one service desk and the services it takes tickets from
// (none = every service, a 综合窗口).
type Window struct {
	No       string
	Services []string
}

// Options configures one simulated hall.
type Options struct {
	Broker   string // tcp://host:port
	ID       string // device id; also the MQTT client id
	Username string
	Password string
	Speed    float64   // simulated seconds per real second (default 1)
	Seed     int64     // same seed, same hall
	Start    time.Time // simulated clock at the start (default now)
	Duration time.Duration
	Count    int // stop after this many messages (0 = no limit)
	// Services and Windows default to DefaultServices and DefaultWindows.
	Services []Service
	Windows  []Window
	// RatedShare is the fraction of finished services that get rated
	// (default 0.8; negative = none); CitizenRefShare the fraction of
	// tickets issued with a citizen_ref (default 0.5).
	RatedShare      float64
	CitizenRefShare float64
	Journal         *Journal
	Logger          *slog.Logger
}

// DefaultServices returns a small township hall's services.
func DefaultServices() []Service {
	return []Service{
		{Name: "social-security", Prefix: "A", PerHour: 30, MeanService: 4 * time.Minute},
		{Name: "household-registration", Prefix: "B", PerHour: 20, MeanService: 6 * time.Minute},
		{Name: "business-license", Prefix: "C", PerHour: 8, MeanService: 10 * time.Minute},
	}
}

// DefaultWindows returns two dedicated windows and two general ones.
func DefaultWindows() []Window {
	return []Window{
		{No: "1", Services: []string{"social-security"}},
		{No: "2", Services: []string{"household-registration"}},
		{No: "3"},
		{No: "4"},
	}
}

func (o *Options) defaults() error {
	if err := checkBroker(o.Broker); err != nil {
		return err
	}
	if o.ID == "" {
		return fmt.Errorf("%w: empty device id", ErrOptions)
	}
	if o.Speed == 0 {
		o.Speed = 1
	}
	if o.Speed < 0 || math.IsNaN(o.Speed) || math.IsInf(o.Speed, 0) {
		return fmt.Errorf("%w: speed %v", ErrOptions, o.Speed)
	}
	if o.Start.IsZero() {
		o.Start = time.Now()
	}
	o.Start = o.Start.Truncate(time.Millisecond) // times on the wire are ms
	if len(o.Services) == 0 {
		o.Services = DefaultServices()
	}
	if len(o.Windows) == 0 {
		o.Windows = DefaultWindows()
	}
	for _, s := range o.Services {
		if s.Name == "" || s.PerHour <= 0 || s.MeanService <= 0 {
			return fmt.Errorf("%w: service %+v needs a name, a rate and a mean service time", ErrOptions, s)
		}
	}
	if o.RatedShare == 0 {
		o.RatedShare = 0.8
	}
	if o.CitizenRefShare == 0 {
		o.CitizenRefShare = 0.5
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Journal records what the simulator published (after the broker's
// PUBACK), with the facts a test needs to recompute the metrics.
type Journal struct {
	mu      sync.Mutex
	entries []Entry
}

// Entry is one published message.
type Entry struct {
	Seq     int64
	Event   string    // topic's last level
	At      time.Time // simulated time = the message ts = the event's own time
	Ticket  string
	Service string
	Window  string
	Rating  int // service.rated
	Payload []byte
}

func (j *Journal) add(e Entry) {
	if j == nil {
		return
	}
	j.mu.Lock()
	j.entries = append(j.entries, e)
	j.mu.Unlock()
}

// Entries returns a copy of the journal.
func (j *Journal) Entries() []Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Entry(nil), j.entries...)
}

type tkt struct {
	no, service string
	issued      time.Time
	window      *desk
	caseNo      string
}

type desk struct {
	Window
	staff string
	busy  bool
}

type hall struct {
	o      *Options
	rng    *rand.Rand
	now    time.Time
	queues map[string][]*tkt
	counts map[string]int
	desks  []*desk
	cases  int
	seq    int64
}

type out struct {
	event   string
	payload map[string]any
	entry   Entry
}

// Run simulates the hall until Duration or Count (then the windows close
// and it disconnects cleanly) or until ctx ends.
func Run(ctx context.Context, o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	h := &hall{o: &o, rng: rand.New(rand.NewPCG(uint64(o.Seed), 0x6b696f736b)), now: o.Start,
		queues: map[string][]*tkt{}, counts: map[string]int{}}
	for i, w := range o.Windows {
		h.desks = append(h.desks, &desk{Window: w, staff: fmt.Sprintf("S%03d", i+1)})
	}
	willTopic := "field/" + o.ID + "/device.status"
	will, _ := json.Marshal(map[string]any{
		"schema": "gw.v1", "ts": o.Start.UnixMilli(), "device_id": o.ID, "device_type": "queue",
		"event": "device.status", "payload": map[string]any{"online": false},
	})
	c, err := dial(ctx, o.Broker, o.ID, o.Username, o.Password, willTopic, will)
	if err != nil {
		return err
	}
	s := &session{o: &o, h: h, c: c, log: o.Logger.With("device", o.ID), realStart: time.Now()}
	q := &agenda{}
	n := 0
	at := func(d time.Duration, f func() []out) {
		n++
		heap.Push(q, &item{At: h.now.Add(d), Seq: n, F: f})
	}
	for _, sv := range o.Services {
		var arrive func() []out
		arrive = func() []out {
			at(h.exp(time.Duration(float64(time.Hour)/sv.PerHour)), arrive)
			msgs := []out{h.issue(sv)}
			return append(msgs, h.dispatch(at)...)
		}
		at(h.exp(time.Duration(float64(time.Hour)/sv.PerHour)), arrive)
	}
	if err := s.day(ctx, q); err != nil {
		c.Abort()
		return err
	}
	if o.Count > 0 && s.sent >= o.Count {
		c.Disconnect(250)
		return nil
	}
	for _, d := range h.desks {
		if err := s.publish(ctx, h.windowStatus(d, "closed")); err != nil {
			c.Abort()
			return err
		}
	}
	c.Disconnect(250)
	return nil
}

// session publishes one kiosk's messages in (scaled) real time.
type session struct {
	o         *Options
	h         *hall
	c         *conn
	log       *slog.Logger
	realStart time.Time
	sent      int
}

// day opens the hall, then plays the agenda until it is empty, past the
// Duration or Count messages were sent.
func (s *session) day(ctx context.Context, q *agenda) error {
	opening := []out{{event: "device.status", payload: map[string]any{"online": true, "printer_paper": "ok", "screen": "ok", "firmware": "sim-1.0"}}}
	for _, d := range s.h.desks {
		opening = append(opening, s.h.windowStatus(d, "open"))
	}
	for _, m := range opening {
		if err := s.publish(ctx, m); err != nil {
			return err
		}
	}
	end := time.Time{}
	if s.o.Duration > 0 {
		end = s.o.Start.Add(s.o.Duration)
	}
	for q.Len() > 0 {
		it := heap.Pop(q).(*item)
		if !end.IsZero() && it.At.After(end) {
			s.h.now = end
			return nil
		}
		s.h.now = it.At
		for _, m := range it.F() {
			if err := s.publish(ctx, m); err != nil {
				return err
			}
			if s.o.Count > 0 && s.sent >= s.o.Count {
				return nil
			}
		}
	}
	return nil
}

// publish sends one message when its simulated time is due.
func (s *session) publish(ctx context.Context, m out) error {
	o, h := s.o, s.h
	h.seq++
	env := map[string]any{
		"schema": "gw.v1", "msg_id": fmt.Sprintf("%s-%d-%d", o.ID, o.Seed, h.seq), "ts": h.now.UnixMilli(), "seq": h.seq,
		"device_id": o.ID, "device_type": "queue", "event": m.event, "payload": m.payload,
	}
	b, err := json.Marshal(env)
	if err != nil {
		return fmt.Errorf("kiosksim %s: encode %s: %w", o.ID, m.event, err)
	}
	due := s.realStart.Add(time.Duration(float64(h.now.Sub(o.Start)) / o.Speed))
	if err := s.c.PublishAt(ctx, ErrBroker, due, "field/"+o.ID+"/"+m.event, b); err != nil {
		return err
	}
	e := m.entry
	e.Seq, e.Event, e.At, e.Payload = h.seq, m.event, h.now, b
	o.Journal.add(e)
	s.log.Debug("published", "event", m.event, "seq", h.seq)
	s.sent++
	return nil
}

func (h *hall) exp(mean time.Duration) time.Duration {
	// Whole milliseconds, at least one: times on the wire are ms.
	return max(time.Duration(h.rng.ExpFloat64()*float64(mean)).Round(time.Millisecond), time.Millisecond)
}

func (h *hall) windowStatus(d *desk, state string) out {
	p := map[string]any{"window_no": d.No, "state": state, "staff_id": d.staff, "at": h.now.UnixMilli()}
	if len(d.Services) > 0 {
		p["services"] = d.Services
	}
	return out{event: "window.status", payload: p, entry: Entry{Window: d.No}}
}

func (h *hall) issue(s Service) out {
	h.counts[s.Name]++
	t := &tkt{no: fmt.Sprintf("%s%03d", s.Prefix, h.counts[s.Name]%1000), service: s.Name, issued: h.now}
	ahead := len(h.queues[s.Name])
	h.queues[s.Name] = append(h.queues[s.Name], t)
	p := map[string]any{
		"ticket_no": t.no, "prefix": s.Prefix, "seq_no": h.counts[s.Name], "business_type": s.Name,
		"business_name": s.Name, "queue_id": s.Name, "issued_at": h.now.UnixMilli(), "channel": "kiosk",
		"waiting_ahead": ahead, "est_wait_s": int(s.MeanService.Seconds()) * ahead, "priority": "normal",
	}
	if h.rng.Float64() < h.o.CitizenRefShare {
		phone := fmt.Sprintf("138%08d", h.rng.IntN(100000000))
		sum := sha256.Sum256([]byte(phone))
		p["citizen_ref"] = hex.EncodeToString(sum[:])
	}
	return out{event: "ticket.issued", payload: p, entry: Entry{Ticket: t.no, Service: s.Name}}
}

// dispatch lets every free desk call the longest-waiting ticket it serves.
func (h *hall) dispatch(at func(time.Duration, func() []out)) []out {
	var msgs []out
	for _, d := range h.desks {
		if d.busy {
			continue
		}
		var best *tkt
		for _, s := range h.o.Services {
			if len(d.Services) > 0 && !slices.Contains(d.Services, s.Name) {
				continue
			}
			if qq := h.queues[s.Name]; len(qq) > 0 && (best == nil || qq[0].issued.Before(best.issued)) {
				best = qq[0]
			}
		}
		if best == nil {
			continue
		}
		h.queues[best.service] = h.queues[best.service][1:]
		d.busy = true
		best.window = d
		msgs = append(msgs, out{event: "ticket.called", entry: Entry{Ticket: best.no, Service: best.service, Window: d.No},
			payload: map[string]any{"ticket_no": best.no, "window_no": d.No, "window_name": "窗口" + d.No,
				"staff_id": d.staff, "called_at": h.now.UnixMilli(), "call_count": 1}})
		t := best
		at(time.Duration(10+h.rng.IntN(30))*time.Second, func() []out { return h.start(t, at) })
	}
	return msgs
}

func (h *hall) start(t *tkt, at func(time.Duration, func() []out)) []out {
	h.cases++
	t.caseNo = fmt.Sprintf("BJ%s%06d", h.now.Format("20060102"), h.cases)
	started := h.now
	var mean time.Duration
	for _, s := range h.o.Services {
		if s.Name == t.service {
			mean = s.MeanService
		}
	}
	at(h.exp(mean), func() []out { return h.finish(t, started, at) })
	return []out{{event: "service.started", entry: Entry{Ticket: t.no, Service: t.service, Window: t.window.No},
		payload: map[string]any{"ticket_no": t.no, "window_no": t.window.No, "staff_id": t.window.staff,
			"matter_code": "11320583MB" + strconv.Itoa(1000000+len(t.service)), "case_no": t.caseNo, "started_at": started.UnixMilli()}}}
}

func (h *hall) finish(t *tkt, started time.Time, at func(time.Duration, func() []out)) []out {
	result := "done"
	if h.rng.IntN(20) == 0 {
		result = "incomplete"
	}
	d := h.now.Sub(started)
	msgs := []out{{event: "service.finished", entry: Entry{Ticket: t.no, Service: t.service, Window: t.window.No},
		payload: map[string]any{"ticket_no": t.no, "window_no": t.window.No, "staff_id": t.window.staff,
			"case_no": t.caseNo, "started_at": started.UnixMilli(), "finished_at": h.now.UnixMilli(), "result": result,
			"service_s": json.Number(strconv.FormatFloat(d.Seconds(), 'f', 3, 64))}}}
	t.window.busy = false
	if h.rng.Float64() < h.o.RatedShare {
		at(time.Duration(5+h.rng.IntN(20))*time.Second, func() []out { return h.rate(t) })
	}
	return append(msgs, h.dispatch(at)...)
}

var reasonCodes = []string{"long_wait", "attitude", "unclear_guidance", "repeat_visit", "system_slow"}
var labels = map[int]string{5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}

func (h *hall) rate(t *tkt) []out {
	var r int
	switch x := h.rng.IntN(100); {
	case x < 60:
		r = 5
	case x < 85:
		r = 4
	case x < 93:
		r = 3
	case x < 97:
		r = 2
	default:
		r = 1
	}
	dim := func() int { return min(5, max(1, r+h.rng.IntN(3)-1)) }
	p := map[string]any{
		"ticket_no": t.no, "case_no": t.caseNo, "window_no": t.window.No, "staff_id": t.window.staff,
		"rating": r, "rating_label": labels[r], "rated_at": h.now.UnixMilli(), "channel": "pad", "timeout": false,
		"dimensions": map[string]any{"overall": r, "efficiency": dim(), "level": dim(), "attitude": dim()},
	}
	if r <= 2 {
		p["reasons"] = []string{reasonCodes[h.rng.IntN(len(reasonCodes))]}
		p["comment"] = "等候时间较长"
	}
	return []out{{event: "service.rated", payload: p, entry: Entry{Ticket: t.no, Service: t.service, Window: t.window.No, Rating: r}}}
}

// agenda is the simulator's event queue, ordered by simulated time.
type (
	item   = fielddev.Item[func() []out]
	agenda = fielddev.Agenda[func() []out]
)
