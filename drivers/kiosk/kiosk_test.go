package kiosk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func mustDecode(t *testing.T, k *Kiosk, event, payload string) drivers.Reading {
	t.Helper()
	rds, err := k.Decode(event, []byte(payload))
	if err != nil {
		t.Fatalf("%s %s: %v", event, payload, err)
	}
	if len(rds) != 1 {
		t.Fatalf("%d readings", len(rds))
	}
	return rds[0]
}

func text(v drivers.Value) string { s, _ := v.AsText(); return s }

func TestConfig(t *testing.T) {
	for _, c := range []Config{{}, {Device: "k", WaitAlarm: -1}, {Device: "k", Window: time.Millisecond}} {
		if _, err := New(c); !errors.Is(err, drivers.ErrConfig) {
			t.Errorf("New(%+v) = %v", c, err)
		}
	}
}

// A ticket's life: wait_s on the first call, handle_s from the start seen
// earlier, the service remembered for events that do not name it.
func TestTicketFlow(t *testing.T) {
	t0 := time.Date(2024, 11, 30, 9, 0, 0, 0, time.UTC)
	c := &clock{t: t0.Add(time.Second)} // inside the window that ends at t0+1m
	k, err := New(Config{Device: "hall", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ms := t0.UnixMilli()
	mustDecode(t, k, "ticket.issued", fmt.Sprintf(`{"ticket_no":"A001","business_type":"tax","issued_at":%d}`, ms))
	rd := mustDecode(t, k, "ticket.called", fmt.Sprintf(`{"ticket_no":"A001","window_no":"2","called_at":%d}`, ms+754321))
	if w := rd.Values["wait_s"]; w.String() != "754.321" || text(rd.Values["service"]) != "tax" {
		t.Errorf("called: %v", rd.Values)
	}
	if !rd.DeviceTime || !rd.Time.Equal(t0.Add(754321*time.Millisecond)) {
		t.Errorf("called time %v %v", rd.Time, rd.DeviceTime)
	}
	// A recall carries no second wait.
	rd = mustDecode(t, k, "ticket.called", fmt.Sprintf(`{"ticket_no":"A001","window_no":"2","called_at":%d,"call_count":2}`, ms+800000))
	if _, ok := rd.Values["wait_s"]; ok {
		t.Errorf("recall has wait_s: %v", rd.Values)
	}
	mustDecode(t, k, "service.started", fmt.Sprintf(`{"ticket_no":"A001","started_at":%d}`, ms+810000))
	rd = mustDecode(t, k, "service.finished", fmt.Sprintf(`{"ticket_no":"A001","finished_at":%d,"result":"done"}`, ms+1110001))
	if rd.Values["handle_s"].String() != "300.001" || text(rd.Values["event"]) != "service_done" || text(rd.Values["service"]) != "tax" {
		t.Errorf("finished: %v", rd.Values)
	}
	rd = mustDecode(t, k, "service.rated", `{"ticket_no":"A001","rating":4}`)
	if text(rd.Values["service"]) != "tax" {
		t.Errorf("rated: %v", rd.Values)
	}
	// A call before the issue (clocks that disagree) is kept: the ticket
	// was called, only its wait is unknown.
	mustDecode(t, k, "ticket.issued", fmt.Sprintf(`{"ticket_no":"A002","business_type":"tax","issued_at":%d}`, ms+1000))
	mustDecode(t, k, "ticket.issued", fmt.Sprintf(`{"ticket_no":"A003","business_type":"tax","issued_at":%d}`, ms+2000))
	rd = mustDecode(t, k, "ticket.called", fmt.Sprintf(`{"ticket_no":"A002","called_at":%d}`, ms))
	if _, ok := rd.Values["wait_s"]; ok || rd.Quality != drivers.QualityInvalidFields ||
		text(rd.Values["invalid"]) != "wait_s: called 1000 ms before the ticket was issued" {
		t.Errorf("time travel: quality %d %v", rd.Quality, rd.Values)
	}
	c.Set(t0.Add(time.Minute))
	m := k.Metrics(c.Now())
	if len(m) != 1 || m[0].Values["waiting"].String() != "1" || m[0].Values["wait_p90_s"].String() != "754.321" ||
		m[0].Values["rating_avg"].String() != "4.00" || m[0].Values["handled_per_h"].String() != "60.00" {
		t.Errorf("metrics %v", m)
	}
}

func TestWaitAlarm(t *testing.T) {
	t0 := time.Date(2024, 11, 30, 9, 0, 0, 0, time.UTC)
	c := &clock{t: t0}
	k, err := New(Config{Device: "hall", Now: c.Now, WaitAlarm: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	mustDecode(t, k, "ticket.issued", `{"ticket_no":"A001","business_type":"tax"}`)
	mustDecode(t, k, "ticket.issued", `{"ticket_no":"A002","business_type":"tax"}`)
	c.Set(t0.Add(10 * time.Minute))
	// At exactly WaitAlarm nobody is over; the first call says so (it
	// clears an alarm a restart left behind).
	if a := k.LongWaits(c.Now()); len(a) != 1 || a[0].Class != drivers.Event || text(a[0].Values["event"]) != "long_wait" ||
		a[0].Values["active"].String() != "false" || a[0].Values["over"].String() != "0" {
		t.Fatalf("at exactly WaitAlarm: %v", a)
	}
	if a := k.LongWaits(c.Now()); len(a) != 0 {
		t.Fatalf("said twice: %v", a)
	}
	mustDecode(t, k, "ticket.called", `{"ticket_no":"A002"}`)
	c.Set(t0.Add(10*time.Minute + time.Millisecond))
	a := k.LongWaits(c.Now())
	if len(a) != 1 || a[0].Class != drivers.Event || text(a[0].Values["event"]) != "long_wait" || text(a[0].Values["ticket"]) != "A001" ||
		text(a[0].Values["service"]) != "tax" || a[0].Values["wait_s"].String() != "600.001" ||
		a[0].Values["active"].String() != "true" || a[0].Values["over"].String() != "1" {
		t.Fatalf("long waits %+v", a)
	}
	c.Set(t0.Add(time.Hour))
	if a := k.LongWaits(c.Now()); len(a) != 0 {
		t.Fatalf("second event for the same ticket: %v", a)
	}
	mustDecode(t, k, "ticket.called", `{"ticket_no":"A001"}`)
	if a := k.LongWaits(c.Now()); len(a) != 1 || a[0].Values["active"].String() != "false" {
		t.Fatalf("after the last long wait was called: %v", a)
	}
	// Run: an event that emit refuses is emitted again.
	mustDecode(t, k, "ticket.issued", `{"ticket_no":"A003","business_type":"tax"}`)
	c.Set(t0.Add(2 * time.Hour))
	boom := errors.New("disk full")
	if err := k.Run(context.Background(), func(drivers.Reading) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Run = %v", err)
	}
	if a := k.LongWaits(c.Now()); len(a) != 1 || text(a[0].Values["ticket"]) != "A003" {
		t.Fatalf("after a refused emit: %v", a)
	}
	mustDecode(t, k, "ticket.skipped", `{"ticket_no":"A003","reason":"no_show"}`)
	if err := k.Run(context.Background(), func(drivers.Reading) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Run = %v", err)
	}
	if a := k.LongWaits(c.Now()); len(a) != 1 || a[0].Values["active"].String() != "false" {
		t.Fatalf("a refused active=false is not said again: %v", a)
	}
}

// Run emits metrics every Window on the real clock and stops with ctx.
func TestRun(t *testing.T) {
	k, err := New(Config{Device: "hall", Window: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mustDecode(t, k, "ticket.issued", `{"ticket_no":"A001","business_type":"tax"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan drivers.Reading, 16)
	done := make(chan error, 1)
	go func() {
		done <- k.Run(ctx, func(r drivers.Reading) error { got <- r; return nil })
	}()
	select {
	case r := <-got:
		if r.Class != drivers.Telemetry || text(r.Values["service"]) != "tax" || r.Values["waiting"].String() != "1" {
			t.Errorf("reading %+v", r)
		}
	case <-ctx.Done():
		t.Fatal("no metrics")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
}

// Decode, Metrics and LongWaits from different goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	k, err := New(Config{Device: "hall", WaitAlarm: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				k.Metrics(time.Now())
				k.LongWaits(time.Now())
			}
		}
	}()
	for i := 0; i < 500; i++ {
		mustDecode(t, k, "ticket.issued", fmt.Sprintf(`{"ticket_no":"A%d","business_type":"tax"}`, i))
		mustDecode(t, k, "ticket.called", fmt.Sprintf(`{"ticket_no":"A%d"}`, i))
	}
	close(stop)
	wg.Wait()
}

func TestNearestRank(t *testing.T) {
	for _, c := range []struct {
		v      []int64
		p      int
		expect int64
	}{
		{[]int64{7}, 50, 7}, {[]int64{7}, 90, 7},
		{[]int64{1, 2}, 50, 1}, {[]int64{1, 2}, 90, 2},
		{[]int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 50, 5}, {[]int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 90, 9},
		{[]int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 90, 10},
	} {
		if got := NearestRank(c.v, c.p); got != c.expect {
			t.Errorf("NearestRank(%v, %d) = %d, want %d", c.v, c.p, got, c.expect)
		}
	}
}

func TestContainsResidentID(t *testing.T) {
	for s, want := range map[string]bool{
		"11010519491231002X":        true,
		"11010519491231002x":        true,
		"110101199003074258":        true,
		"no: 110101199003074258.":   true,
		"身份证110101199003074258号":    true,
		"130503670401001":           true,  // 15 digits, 1967-04-01
		"110101199003074257":        false, // wrong check digit: not an ID
		"320583202411300001":        false, // a case number, check digit wrong
		"1101011990030742581":       false, // 19 digits
		"a110101199003074258":       false, // glued to a letter: part of a code
		"110101199013074258":        false, // month 13
		"910101199003074258":        false, // no region starting with 9
		"13800138000":               false, // a phone number
		"130503671301001":           false, // 15 digits, month 13
		"9b74c98971101011990030742": false,
	} {
		if got := ContainsResidentID(s); got != want {
			t.Errorf("ContainsResidentID(%q) = %v, want %v", s, got, want)
		}
	}
}

// Every kind of carrier of an ID is refused, and the error never holds
// the number.
func TestPrivacy(t *testing.T) {
	k := newTest(t)
	const id = "11010519491231002X"
	for _, p := range []string{
		`{"ticket_no":"A1","business_type":"t","comment":"` + id + `"}`,
		`{"ticket_no":"A1","business_type":"t","x":[{"y":["` + id + `"]}]}`,
		`{"ticket_no":"A1","business_type":"t","` + id + `":1}`,
		`{"payload":{"ticket_no":"A1","business_type":"t"},"note":"` + id + `"}`,
		`{"ticket_no":"A1","business_type":"t","IdCard":"1"}`,
		`{"ticket_no":"A1","business_type":"t","citizen-id":"1"}`,
		`{"ticket_no":"A1","business_type":"t","SFZ":null}`,
		`{"ticket_no":"A1","business_type":"t","citizen_ref":"` + id + `"}`,
	} {
		_, err := k.Decode("ticket.issued", []byte(p))
		if !errors.Is(err, ErrPersonalData) {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if strings.Contains(err.Error(), "1101051949") {
			t.Errorf("the error echoes the ID: %v", err)
		}
	}
}

// A transferred ticket waits again in its new queue; a skipped one stops
// waiting; neither alarms twice.
func TestTransferAndSkip(t *testing.T) {
	t0 := time.Date(2024, 11, 30, 9, 0, 0, 0, time.UTC)
	c := &clock{t: t0}
	k, err := New(Config{Device: "hall", Now: c.Now, WaitAlarm: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	mustDecode(t, k, "ticket.issued", `{"ticket_no":"A1","business_type":"tax"}`)
	mustDecode(t, k, "ticket.issued", `{"ticket_no":"A2","business_type":"tax"}`)
	c.Set(t0.Add(2 * time.Minute))
	if a := k.LongWaits(c.Now()); len(a) != 2 {
		t.Fatalf("long waits %v", a)
	}
	rd := mustDecode(t, k, "ticket.transferred", `{"ticket_no":"A1","from_window":"1","to_queue":"social"}`)
	if text(rd.Values["service"]) != "social" {
		t.Errorf("transfer %v", rd.Values)
	}
	mustDecode(t, k, "ticket.skipped", `{"ticket_no":"A2","reason":"no_show"}`)
	c.Set(t0.Add(10 * time.Minute))
	if a := k.LongWaits(c.Now()); len(a) != 0 {
		t.Errorf("alarmed again: %v", a)
	}
	waiting := map[string]string{}
	for _, r := range k.Metrics(c.Now()) {
		waiting[text(r.Values["service"])] = r.Values["waiting"].String()
	}
	if waiting["tax"] != "0" || waiting["social"] != "1" {
		t.Errorf("waiting %v", waiting)
	}
	rd = mustDecode(t, k, "ticket.called", fmt.Sprintf(`{"ticket_no":"A1","called_at":%d}`, t0.Add(10*time.Minute).UnixMilli()))
	if rd.Values["wait_s"].String() != "480.000" || text(rd.Values["service"]) != "social" {
		t.Errorf("call after transfer: %v", rd.Values)
	}
}

// There is no size limit in the decoder: the field broker's max_payload
// (256 KiB by default) is the only one.
func TestNoSizeLimit(t *testing.T) {
	k := newTest(t)
	notes := strings.Repeat("排队叫号 ", (256<<10)/13)
	rd := mustDecode(t, k, "ticket.issued", `{"ticket_no":"A1","business_type":"tax","vendor_notes":"`+notes+`"}`)
	if len(notes) < 250<<10 || text(rd.Values["ticket"]) != "A1" {
		t.Errorf("%d bytes of notes: %v", len(notes), rd.Values)
	}
}
