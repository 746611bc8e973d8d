package kiosk

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/firmware-sim/kiosksim"
)

// ev is one event as the test knows it, for the independent recount.
type ev struct {
	at       int64 // ms: the message ts, the event's own time, the arrival time
	event    string
	ticket   string
	service  string
	rating   int
	window   string
	state    string
	services []string
	recall   bool
	payload  []byte
}

// expected recounts the metrics of the window (end-w, end] from the event
// list, plainly, without the driver's code: service → point → text.
func expected(evs []ev, end, w int64) map[string]map[string]string {
	issued := map[string]int64{}
	svcOf := map[string]string{}
	waiting := map[string]bool{}
	known := map[string]bool{}
	waits := map[string][]int64{}
	handled := map[string]int{}
	ratings := map[string][]int{}
	type win struct {
		open     bool
		services []string
	}
	windows := map[string]win{}
	for _, e := range evs {
		if e.at > end {
			break
		}
		in := e.at > end-w
		switch e.event {
		case "ticket.issued":
			issued[e.ticket], svcOf[e.ticket], waiting[e.ticket] = e.at, e.service, true
			known[e.service] = true
		case "ticket.called":
			if waiting[e.ticket] && !e.recall && in {
				waits[svcOf[e.ticket]] = append(waits[svcOf[e.ticket]], e.at-issued[e.ticket])
			}
			waiting[e.ticket] = false
		case "ticket.skipped":
			waiting[e.ticket] = false
		case "service.finished":
			if in {
				handled[svcOf[e.ticket]]++
			}
		case "service.rated":
			if in {
				ratings[svcOf[e.ticket]] = append(ratings[svcOf[e.ticket]], e.rating)
			}
		case "window.status":
			windows[e.window] = win{e.state == "open", e.services}
			for _, s := range e.services {
				known[s] = true
			}
		}
	}
	out := map[string]map[string]string{}
	for s := range known {
		v := map[string]string{"service": s}
		n := 0
		for t, ok := range waiting {
			if ok && svcOf[t] == s {
				n++
			}
		}
		v["waiting"] = fmt.Sprint(n)
		open := 0
		for _, x := range windows {
			if x.open && (len(x.services) == 0 || slices.Contains(x.services, s)) {
				open++
			}
		}
		v["windows_open"] = fmt.Sprint(open)
		perHour := new(big.Rat).SetFrac64(int64(handled[s])*3600000*100, w)
		v["handled_per_h"] = twoPlaces(perHour)
		if ws := waits[s]; len(ws) > 0 {
			sort.Slice(ws, func(i, j int) bool { return ws[i] < ws[j] })
			rank := func(p float64) int64 { // nearest rank, 1-based
				r := int(float64(len(ws))*p/100 + 0.999999999)
				return ws[max(r, 1)-1]
			}
			v["wait_p50_s"] = fmt.Sprintf("%d.%03d", rank(50)/1000, rank(50)%1000)
			v["wait_p90_s"] = fmt.Sprintf("%d.%03d", rank(90)/1000, rank(90)%1000)
		}
		if rs := ratings[s]; len(rs) > 0 {
			sum := 0
			for _, r := range rs {
				sum += r
			}
			v["rating_avg"] = twoPlaces(new(big.Rat).SetFrac64(int64(sum)*100, int64(len(rs))))
		}
		out[s] = v
	}
	return out
}

// twoPlaces formats hundredths, rounded half up, as "x.yy".
func twoPlaces(hundredths *big.Rat) string {
	h := new(big.Rat).Add(hundredths, big.NewRat(1, 2))
	q := new(big.Int).Quo(h.Num(), h.Denom())
	return fmt.Sprintf("%d.%02d", q.Int64()/100, q.Int64()%100)
}

// replay feeds events to a kiosk with the clock at each event's time and
// compares Metrics at every window boundary with the recount. It returns
// how many non-empty windows it compared.
func replay(t *testing.T, evs []ev, start int64, w time.Duration, decode func(k *Kiosk, e ev)) int {
	t.Helper()
	c := &clock{t: time.UnixMilli(start)}
	k, err := New(Config{Device: "hall-kiosk-1", Window: w, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	wm := w.Milliseconds()
	next := start + wm
	compared := 0
	check := func(end int64) {
		got := map[string]map[string]string{}
		for _, r := range k.Metrics(time.UnixMilli(end)) {
			if r.Class != drivers.Telemetry || !r.Time.Equal(time.UnixMilli(end)) || r.DeviceTime {
				t.Fatalf("metrics reading %+v", r)
			}
			v := map[string]string{}
			for name, x := range r.Values {
				if name != "window_s" {
					v[name] = x.String()
				}
			}
			got[text(r.Values["service"])] = v
		}
		want := expected(evs, end, wm)
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if string(gj) != string(wj) {
			t.Fatalf("window ending %v:\n got %s\nwant %s", time.UnixMilli(end).UTC(), gj, wj)
		}
		if strings.Contains(string(wj), "wait_p50_s") {
			compared++
		}
	}
	for _, e := range evs {
		for next < e.at {
			check(next)
			next += wm
		}
		c.Set(time.UnixMilli(e.at))
		decode(k, e)
	}
	check(next)
	return compared
}

// A seeded stream from a small generator: two services, recalls, skips,
// bad ratings with reasons; metrics equal a plain recount in every window.
func TestMetricsGenerated(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	start := time.Date(2024, 11, 30, 9, 0, 0, 0, time.UTC).UnixMilli()
	var evs []ev
	for i := 0; i < 400; i++ {
		svc := []string{"tax", "social"}[rng.IntN(2)]
		no := fmt.Sprintf("%c%03d", 'A'+rune(len(svc)%2), i)
		at := start + int64(rng.IntN(4*3600*1000))
		evs = append(evs, ev{at: at, event: "ticket.issued", ticket: no, service: svc})
		called := at + int64(rng.IntN(1800*1000))
		if rng.IntN(10) == 0 {
			evs = append(evs, ev{at: called, event: "ticket.skipped", ticket: no})
			continue
		}
		evs = append(evs, ev{at: called, event: "ticket.called", ticket: no})
		if rng.IntN(5) == 0 {
			evs = append(evs, ev{at: called + 30000, event: "ticket.called", ticket: no, recall: true})
		}
		done := called + 60000 + int64(rng.IntN(900*1000))
		evs = append(evs, ev{at: done, event: "service.finished", ticket: no})
		if rng.IntN(4) != 0 {
			evs = append(evs, ev{at: done + 10000, event: "service.rated", ticket: no, rating: 1 + rng.IntN(5)})
		}
	}
	evs = append(evs, ev{at: start, event: "window.status", window: "1", state: "open", services: []string{"tax"}},
		ev{at: start, event: "window.status", window: "2", state: "open"},
		ev{at: start + 3600*1000, event: "window.status", window: "2", state: "paused"})
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at < evs[j].at })
	for i := range evs {
		e := &evs[i]
		p := map[string]any{"ticket_no": e.ticket}
		switch e.event {
		case "ticket.issued":
			p["business_type"], p["issued_at"] = e.service, e.at
		case "ticket.called":
			p["called_at"] = e.at
			if e.recall {
				p["call_count"] = 2
			}
		case "service.finished":
			p["finished_at"] = e.at
		case "service.rated":
			p["rating"] = e.rating
			if e.rating <= 2 {
				p["reasons"] = []string{"long_wait"}
			}
		case "window.status":
			p = map[string]any{"window_no": e.window, "state": e.state}
			if e.services != nil {
				p["services"] = e.services
			}
		}
		b, _ := json.Marshal(map[string]any{"ts": e.at, "payload": p})
		e.payload = b
	}
	compared := replay(t, evs, start, 5*time.Minute, func(k *Kiosk, e ev) {
		if _, err := k.Decode(e.event, e.payload); err != nil {
			t.Fatalf("%s: %v", e.payload, err)
		}
	})
	if compared < 20 {
		t.Errorf("only %d windows had waits", compared)
	}
}

// The independent simulator through a real broker: every message is
// decoded before its PUBACK with the gateway clock at the message's time,
// and the metrics equal a recount from the simulator's own journal.
func TestMetricsSimulator(t *testing.T) {
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var msgs []ev
	if err := srv.AddHook(&onPublish{fn: func(pk packets.Packet) {
		event, ok := strings.CutPrefix(pk.TopicName, "field/hall-kiosk-1/")
		var env struct{ TS int64 }
		if err := json.Unmarshal(pk.Payload, &env); err != nil || !ok {
			t.Errorf("%s %s: %v", pk.TopicName, pk.Payload, err)
			return
		}
		mu.Lock()
		msgs = append(msgs, ev{at: env.TS, event: event, payload: append([]byte(nil), pk.Payload...)})
		mu.Unlock()
	}}, nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	start := time.Date(2024, 11, 30, 9, 0, 0, 0, time.UTC)
	j := &kiosksim.Journal{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := kiosksim.Run(ctx, kiosksim.Options{Broker: "tcp://" + l.Address(), ID: "hall-kiosk-1", Username: "hall-kiosk-1",
		Password: "pw", Speed: 1e7, Seed: 2024, Start: start, Duration: 4 * time.Hour, Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// The recount uses the simulator's journal only.
	var evs []ev
	for _, e := range j.Entries() {
		x := ev{at: e.At.UnixMilli(), event: e.Event, ticket: e.Ticket, service: e.Service, window: e.Window, rating: e.Rating}
		if e.Event == "window.status" {
			var env struct {
				Payload struct {
					State    string
					Services []string
				}
			}
			if err := json.Unmarshal(e.Payload, &env); err != nil {
				t.Fatal(err)
			}
			x.state, x.services = env.Payload.State, env.Payload.Services
		}
		evs = append(evs, x)
	}
	if len(evs) != len(msgs) {
		t.Fatalf("broker saw %d messages, journal has %d", len(msgs), len(evs))
	}
	for i := range evs {
		if evs[i].at != msgs[i].at || evs[i].event != msgs[i].event {
			t.Fatalf("message %d: broker %s at %d, journal %s at %d", i, msgs[i].event, msgs[i].at, evs[i].event, evs[i].at)
		}
		evs[i].payload = msgs[i].payload
	}
	counts := map[string]int{}
	compared := replay(t, evs, start.UnixMilli(), time.Minute, func(k *Kiosk, e ev) {
		counts[e.event]++
		rds, err := k.Decode(e.event, e.payload)
		if err != nil {
			t.Fatalf("refused %s: %v", e.payload, err)
		}
		if !rds[0].DeviceTime || rds[0].Time.UnixMilli() != e.at {
			t.Fatalf("%s: time %v", e.event, rds[0].Time)
		}
	})
	for _, name := range []string{"ticket.issued", "ticket.called", "service.started", "service.finished", "service.rated", "window.status"} {
		if counts[name] == 0 {
			t.Errorf("no %s: %v", name, counts)
		}
	}
	if compared < 100 {
		t.Errorf("only %d one-minute windows had waits", compared)
	}
	t.Logf("%d messages, %v; %d windows compared with waits", len(evs), counts, compared)
}

// onPublish is a mochi hook that sees every message before its PUBACK
// (mochi calls inline subscribers only after it), as the gateway does.
type onPublish struct {
	mqtt.HookBase
	fn func(packets.Packet)
}

func (h *onPublish) ID() string           { return "decode" }
func (h *onPublish) Provides(b byte) bool { return b == mqtt.OnPublish }
func (h *onPublish) OnPublish(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	h.fn(pk)
	return pk, nil
}
