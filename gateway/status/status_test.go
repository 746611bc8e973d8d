package status_test

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/gateway/health"
	"github.com/townlink/townlink/gateway/status"
	"github.com/townlink/townlink/uplink/badgerq"
	"github.com/townlink/townlink/uplink/wire"
)

type days map[string]int64

func (d days) Days() map[string]int64 { return d }

type drops map[string]uint64

func (d drops) Dropped() map[string]uint64 { return d }

// rig is a Reporter over a real Badger queue and a health registry whose
// devices the test sets.
type rig struct {
	q      *badgerq.Queue
	mu     sync.Mutex
	states map[string]health.State
	conn   bool
	pubs   chan *wire.Status
	saves  int
	r      *status.Reporter
}

func newRig(t *testing.T) *rig {
	t.Helper()
	db, err := badgerq.Open(badgerq.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	q, err := db.Stream(wire.StreamTelemetry, badgerq.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g := &rig{q: q, states: map[string]health.State{"m1": health.Ok, "door": health.Ok}, conn: true, pubs: make(chan *wire.Status, 16)}
	reg := health.NewRegistry("m1", "door")
	reg.Add(health.ReporterFunc(func() map[string]health.State {
		g.mu.Lock()
		defer g.mu.Unlock()
		return maps.Clone(g.states)
	}))
	g.r = status.New(status.Config{
		Gateway: "gw-t1", Version: "1.2.3", Boot: "b00t", Interval: time.Hour,
		Queues: map[string]status.Queue{wire.StreamTelemetry: q},
		Health: reg, Drops: drops{"quota": 7}, Certs: days{"uplink_client": 12},
		Connected: func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.conn },
		Publish: func(_ context.Context, p []byte) error {
			st, err := wire.DecodeStatus(p)
			if err != nil {
				t.Errorf("published status does not decode: %v", err)
			}
			g.pubs <- st
			return nil
		},
		ClockSynced: func() bool { return true },
		OnTick:      func() { g.mu.Lock(); g.saves++; g.mu.Unlock() },
	})
	return g
}

func (g *rig) set(id string, s health.State) {
	g.mu.Lock()
	g.states[id] = s
	g.mu.Unlock()
}

func TestSnapshotReadsEveryPart(t *testing.T) {
	g := newRig(t)
	before := time.Now()
	if err := g.q.Append(context.Background(), []byte("r1"), []byte("r2")); err != nil {
		t.Fatal(err)
	}
	g.set("door", health.Down)
	st := g.r.Snapshot(wire.StateOnline)
	elapsed := time.Since(before)
	if st.GW != "gw-t1" || st.Version != "1.2.3" || st.Boot != "b00t" || st.State != "online" || st.Clock != "synced" {
		t.Fatalf("header = %+v", st)
	}
	if st.Backlog[wire.StreamTelemetry] != 2 {
		t.Fatalf("backlog = %v, want 2 telemetry", st.Backlog)
	}
	if st.OldestUnsentMS > uint64(elapsed.Milliseconds())+1 {
		t.Fatalf("oldest unsent %d ms, but the records are %v old", st.OldestUnsentMS, elapsed)
	}
	if want := map[string]string{"m1": "ok", "door": "down"}; !maps.Equal(st.Devices, want) {
		t.Fatalf("devices = %v, want %v", st.Devices, want)
	}
	if st.Dropped["quota"] != 7 || st.Certs["uplink_client"] != 12 {
		t.Fatalf("dropped %v certs %v", st.Dropped, st.Certs)
	}
	if _, err := g.r.Encode(wire.StateOffline); err != nil {
		t.Fatalf("offline status: %v", err)
	}
}

// The oldest unsent age is measured from the queue's Oldest: with the
// clock a minute on, it is a minute.
func TestOldestUnsentAge(t *testing.T) {
	db, err := badgerq.Open(badgerq.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, _ := db.Stream(wire.StreamEvents, badgerq.StreamOptions{})
	q2, _ := db.Stream(wire.StreamAlarms, badgerq.StreamOptions{})
	if err := q.Append(context.Background(), []byte("e")); err != nil {
		t.Fatal(err)
	}
	oldest := q.Stats().Oldest
	r := status.New(status.Config{Gateway: "gw-t1", Version: "v", Boot: "b",
		Queues: map[string]status.Queue{wire.StreamEvents: q, wire.StreamAlarms: q2},
		Now:    func() time.Time { return oldest.Add(time.Minute) }})
	st := r.Snapshot(wire.StateOnline)
	if st.OldestUnsentMS != 60000 {
		t.Fatalf("oldest unsent = %d ms, want 60000", st.OldestUnsentMS)
	}
	if st.Clock != "unsynced" || st.Backlog[wire.StreamAlarms] != 0 {
		t.Fatalf("status = %+v", st)
	}
}

func TestRunPublishesOnStartKickAndDeviceChange(t *testing.T) {
	g := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.r.Run(ctx) }()
	next := func(what string) *wire.Status {
		t.Helper()
		select {
		case st := <-g.pubs:
			return st
		case <-ctx.Done():
			t.Fatalf("no status published for %s", what)
		}
		return nil
	}
	if st := next("start"); st.Devices["door"] != "ok" {
		t.Fatalf("first status = %+v", st)
	}
	g.set("door", health.Down)
	if st := next("device change"); st.Devices["door"] != "down" {
		t.Fatalf("status after the door went down = %v", st.Devices)
	}
	g.mu.Lock()
	g.conn = false
	g.mu.Unlock()
	g.r.Kick()
	g.set("m1", health.Degraded) // no publish while disconnected
	g.mu.Lock()
	g.conn = true
	g.mu.Unlock()
	g.r.Kick()
	st := next("kick after reconnect")
	if st.Devices["m1"] != "degraded" {
		t.Fatalf("status after reconnect = %v", st.Devices)
	}
	cancel()
	<-done
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.saves < 3 {
		t.Fatalf("OnTick ran %d times, want at least 3", g.saves)
	}
}
