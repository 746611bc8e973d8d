package gateway

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/townlink/townlink/gateway/clock"
	"github.com/townlink/townlink/gateway/pipeline"
	"github.com/townlink/townlink/uplink/badgerq"
	"github.com/townlink/townlink/uplink/wire"
)

// statusReporter publishes the retained status message: at start, on every
// (re)connect, whenever a device changes state, and every status_interval.
type statusReporter struct {
	g     *Gateway
	kickc chan struct{}

	mu      sync.Mutex
	dropped map[string]uint64
	last    map[string]string
}

func newStatusReporter(g *Gateway) *statusReporter {
	return &statusReporter{g: g, kickc: make(chan struct{}, 1), dropped: map[string]uint64{}}
}

// kick asks for a status publish soon (never blocks).
func (s *statusReporter) kick() {
	select {
	case s.kickc <- struct{}{}:
	default:
	}
}

// countDrop records records dropped for a reason (reported in status).
func (s *statusReporter) countDrop(reason string, n uint64) {
	s.mu.Lock()
	s.dropped[reason] += n
	s.mu.Unlock()
	s.kick()
}

// devices returns every configured device's state.
func (s *statusReporter) devices() map[string]string {
	m := make(map[string]string, len(s.g.cfg.Devices))
	for _, l := range s.g.lines {
		for id, st := range l.States() {
			m[id] = string(st.State)
		}
	}
	for _, d := range s.g.cfg.Devices {
		if _, ok := m[d.ID]; !ok {
			m[d.ID] = s.g.sourceState(d.ID)
		}
	}
	return m
}

func (s *statusReporter) snapshot(state string) *wire.Status {
	st := &wire.Status{
		V:       wire.Version,
		GW:      s.g.cfg.Gateway.ID,
		State:   state,
		TS:      time.Now().UnixMilli(),
		Version: Version,
		Boot:    s.g.boot,
		Backlog: map[string]uint64{},
		Dropped: map[string]uint64{},
		Devices: map[string]string{},
		Clock:   "unsynced",
	}
	if clock.Synced() {
		st.Clock = "synced"
	}
	if state == "offline" && s.g.queues == nil {
		return st
	}
	var oldest int64
	for c, q := range s.g.queues {
		qs := q.Stats()
		st.Backlog[pipeline.StreamOf(c)] = uint64(qs.Backlog)
		if ts := oldestTS(q); ts > 0 && (oldest == 0 || ts < oldest) {
			oldest = ts
		}
	}
	if oldest > 0 {
		st.OldestUnsentMS = uint64(max(0, st.TS-oldest))
	}
	s.mu.Lock()
	maps.Copy(st.Dropped, s.dropped)
	s.mu.Unlock()
	for reason, n := range s.g.db.Dropped() {
		st.Dropped[reason] += n
	}
	if s.g.lines != nil || s.g.sources != nil {
		st.Devices = s.devices()
	}
	st.Alarms = s.g.activeAlarms() // rules.go
	return st
}

func (s *statusReporter) publish(ctx context.Context, state string) {
	b, err := wire.EncodeStatus(s.snapshot(state))
	if err != nil {
		s.g.log.Error("status not encoded", "err", err)
		return
	}
	if err := s.g.client.PublishRetained(ctx, s.g.topic(wire.StreamStatus), b); err != nil {
		s.g.log.Debug("status not published", "err", err)
	}
}

func (s *statusReporter) run(ctx context.Context) error {
	every := s.g.cfg.Gateway.StatusInterval
	tick := time.NewTicker(every)
	defer tick.Stop()
	check := time.NewTicker(time.Second)
	defer check.Stop()
	s.kick()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-s.kickc:
		case <-check.C:
			devs := s.devices()
			s.mu.Lock()
			changed := !maps.Equal(devs, s.last)
			s.last = devs
			s.mu.Unlock()
			if !changed {
				continue
			}
		}
		if !s.g.client.Connected() {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		s.publish(pctx, "online")
		cancel()
	}
}

// oldestTS is the measurement time of the oldest record still queued.
func oldestTS(q *badgerq.Queue) int64 {
	if q.Stats().Backlog == 0 {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	es, err := q.Peek(ctx, 0, 1)
	if err != nil || len(es) == 0 {
		return 0
	}
	r, err := wire.DecodeRecord(es[0].Data)
	if err != nil {
		return 0
	}
	return r.TS
}
