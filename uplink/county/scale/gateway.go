package scale

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/badgerq"
	"github.com/townlink/townlink/uplink/mqttpub"
	"github.com/townlink/townlink/uplink/wire"
)

// streams every simulated gateway runs, in the gateway's order.
var streams = []string{wire.StreamTelemetry, wire.StreamEvents, wire.StreamAlarms, wire.StreamEvidence}

// gateway is one simulated township gateway built from the real uplink
// parts: its own Badger queue (low-memory profile), one Forwarder per
// stream, one MQTT client, "ack: platform".
type gateway struct {
	id, county, township string
	key                  ed25519.PrivateKey
	devices              int
	interval             time.Duration

	db     *badgerq.DB
	queues map[string]*badgerq.Queue
	fwds   map[string]*uplink.Forwarder
	client *mqttpub.Client

	headMu   sync.Mutex
	headSeq  uint64 // the newest evidence record sealed, and its hash
	headHash []byte

	mu        sync.Mutex
	lastAck   time.Time
	stalls    []stall // gaps between acks longer than stallMin
	connects  []time.Time
	appended  atomic.Int64
	acked     atomic.Int64
	appendErr atomic.Int64
}

// stall is a time without any acknowledgement while records waited.
type stall struct {
	end time.Time
	d   time.Duration
}

const stallMin = 2 * time.Second

func gatewayKey(i int) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte(fmt.Sprintf("townlink-scale-gateway-%d", i)))
	return ed25519.NewKeyFromSeed(seed[:])
}

func newGateway(dir string, i int, cfg *Config, brokers []string, pacerRate float64) (*gateway, error) {
	twp := fmt.Sprintf("%s%03d", cfg.County, 100+i%cfg.Townships)
	g := &gateway{
		id: fmt.Sprintf("gw-%03d", i), county: cfg.County, township: twp, key: gatewayKey(i),
		devices: cfg.Devices, interval: cfg.Interval, queues: map[string]*badgerq.Queue{}, fwds: map[string]*uplink.Forwarder{},
	}
	db, err := badgerq.Open(badgerq.Options{Dir: filepath.Join(dir, g.id), GCInterval: 5 * time.Minute})
	if err != nil {
		return nil, err
	}
	g.db = db
	for _, s := range streams {
		o := badgerq.StreamOptions{Seal: wire.NewSealer(s, signerFor(s, g.key)).Seal}
		if s == wire.StreamEvidence {
			o.Seal = g.trackHead(o.Seal)
		}
		if s == wire.StreamTelemetry || s == wire.StreamEvents {
			o.Gap = func(from, to uint64, reason string) ([]byte, error) {
				r := wire.GapRecord(g.id, from, to, reason, time.Now().UnixMilli())
				return wire.EncodeRecord(&r)
			}
		}
		if g.queues[s], err = db.Stream(s, o); err != nil {
			db.Close()
			return nil, err
		}
	}
	// Each gateway starts with a different broker, as a county's would.
	rot := append(append([]string(nil), brokers[i%len(brokers):]...), brokers[:i%len(brokers)]...)
	g.client, err = mqttpub.New(mqttpub.Options{
		Brokers: rot, ClientID: g.id, PersistentSession: true,
		Backoff:   mqttpub.Backoff{Min: cfg.BackoffMin, Max: cfg.BackoffMax},
		OnConnect: g.onConnect,
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	var pacer *uplink.Pacer
	if pacerRate > 0 {
		if pacer, err = uplink.NewPacer(pacerRate, 0); err != nil {
			db.Close()
			return nil, err
		}
	}
	for _, s := range streams {
		var p *uplink.Pacer
		if s == wire.StreamTelemetry || s == wire.StreamEvents {
			p = pacer
		}
		f, err := newForwarder(g, s, p, cfg.MaxDelay, cfg.AckTimeout)
		if err != nil {
			g.client.Close()
			db.Close()
			return nil, err
		}
		g.fwds[s] = f
	}
	return g, nil
}

func signerFor(stream string, key ed25519.PrivateKey) wire.Signer {
	if stream != wire.StreamEvidence {
		return nil
	}
	return wire.Ed25519Signer(key)
}

// newForwarder is the one place the harness builds an uplink forwarder (the
// gateway's own wiring, gateway.buildForwarders, builds them the same way).
func newForwarder(g *gateway, stream string, pacer *uplink.Pacer, maxDelay, ackTimeout time.Duration) (*uplink.Forwarder, error) {
	return uplink.NewForwarder(uplink.ForwarderConfig{
		Queue: g.queues[stream], Publisher: g.client, Topic: g.topic(stream),
		Frame:    wire.Framer(g.id, stream),
		MaxBatch: uplink.DefaultMaxBatch, MaxDelay: maxDelay, Pacer: pacer,
		MaxRetry: 15 * time.Second, Ack: uplink.AckPlatform, AckTimeout: ackTimeout,
		OnAck: g.onAck,
	})
}

func (g *gateway) topic(stream string) string { return wire.Topic(g.county, g.township, g.id, stream) }

func (g *gateway) onConnect() {
	g.mu.Lock()
	g.connects = append(g.connects, time.Now())
	g.mu.Unlock()
	for _, f := range g.fwds {
		f.Reconnected()
	}
}

func (g *gateway) onAck(n int) {
	now := time.Now()
	g.acked.Add(int64(n))
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.lastAck.IsZero() && now.Sub(g.lastAck) >= stallMin {
		g.stalls = append(g.stalls, stall{end: now, d: now.Sub(g.lastAck)})
	}
	g.lastAck = now
}

// run starts the client, the forwarders and the ack subscription; it returns
// when ctx ends and every part stopped.
func (g *gateway) run(ctx context.Context, wg *sync.WaitGroup) error {
	err := g.client.Subscribe(ctx, g.topic(wire.StreamAck), func(_ string, p []byte) {
		a, err := wire.DecodeAck(p)
		if err != nil {
			return
		}
		if f, ok := g.fwds[a.Stream]; ok {
			f.PlatformAck(a.Upto)
		}
	})
	if err != nil {
		return err
	}
	g.client.Start(ctx)
	for _, f := range g.fwds {
		wg.Add(1)
		go func() { defer wg.Done(); _ = f.Run(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); g.statusLoop(ctx) }()
	return nil
}

// trackHead wraps the evidence sealer to remember the newest head, which the
// status announces and signs. (A seal that does not commit is run again
// for the same seq with the same result.)
func (g *gateway) trackHead(seal func(seq uint64, payload, state []byte) ([]byte, []byte, error)) func(uint64, []byte, []byte) ([]byte, []byte, error) {
	return func(seq uint64, payload, state []byte) ([]byte, []byte, error) {
		out, head, err := seal(seq, payload, state)
		if err == nil {
			g.headMu.Lock()
			if seq >= g.headSeq {
				g.headSeq, g.headHash = seq, append([]byte(nil), head...)
			}
			g.headMu.Unlock()
		}
		return out, head, err
	}
}

// statusLoop publishes the retained status every 15 s, as the gateway does:
// backlog and the last committed seq of each stream, and the signed
// evidence head.
func (g *gateway) statusLoop(ctx context.Context) {
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := &wire.Status{V: wire.Version, GW: g.id, State: wire.StateOnline, TS: time.Now().UnixMilli(), Version: "scale",
			Boot: "scale", Backlog: map[string]uint64{}, Dropped: map[string]uint64{}, Devices: map[string]string{},
			Clock: wire.ClockSynced, LastSeq: map[string]uint64{}}
		for s, q := range g.queues {
			qs := q.Stats()
			st.Backlog[s] = uint64(qs.Backlog)
			st.LastSeq[s] = qs.LastSeq
		}
		g.headMu.Lock()
		seq, head := g.headSeq, g.headHash
		g.headMu.Unlock()
		st.LastSeq[wire.StreamEvidence] = seq
		if seq > 0 {
			if err := wire.SignHead(wire.Ed25519Signer(g.key), st, seq, head); err != nil {
				continue
			}
		} else {
			delete(st.LastSeq, wire.StreamEvidence)
		}
		p, err := wire.EncodeStatus(st)
		if err != nil {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_ = g.client.PublishRetained(pctx, g.topic(wire.StreamStatus), p)
		cancel()
	}
}

// generate appends the readings of the gateway's devices until ctx ends:
// device d reads every interval, at its own phase; each second's readings
// go into the queue in one Append per stream.
func (g *gateway) generate(ctx context.Context, rng *rand.Rand) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start := time.Now()
	next := 0 // readings issued so far
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			due := int(float64(g.devices) * now.Sub(start).Seconds() / g.interval.Seconds())
			recs := map[string][][]byte{}
			for ; next < due; next++ {
				s, r := g.reading(next, now, rng)
				enc, err := wire.EncodeRecord(&r)
				if err != nil {
					g.appendErr.Add(1)
					continue
				}
				recs[s] = append(recs[s], enc)
			}
			for s, rs := range recs {
				// The run's end must not cut an append short: an Append
				// that fails may still have been committed.
				if err := g.queues[s].Append(context.WithoutCancel(ctx), rs...); err != nil {
					g.appendErr.Add(int64(len(rs)))
					continue
				}
				g.appended.Add(int64(len(rs)))
			}
		}
	}
}

// reading is the gateway's n-th reading (device n%devices): mostly power
// and water telemetry with exact decimals; every 40th an event, every
// 200th an alarm and another an evidence record.
func (g *gateway) reading(n int, now time.Time, rng *rand.Rand) (string, wire.Record) {
	dev, round := n%g.devices, n/g.devices
	r := wire.Record{Dev: fmt.Sprintf("d%03d", dev), TS: now.UnixMilli(), TSrc: wire.TSrcGateway, Grid: fmt.Sprintf("g-%02d", dev%16)}
	switch {
	case n%200 == 7:
		r.Kind = wire.KindRecorder
		r.Vals = map[string]wire.Value{"file_id": wire.Text(fmt.Sprintf("%s-%d", g.id, n)),
			"size_bytes": wire.Int(int64(rng.IntN(1 << 30))), "officer": wire.Text("o-17")}
		return wire.StreamEvidence, r
	case n%200 == 57:
		r.Kind = wire.KindGPIO
		r.Vals = map[string]wire.Value{"state": wire.Bool(true), "alarm": wire.Text("tamper")}
		return wire.StreamAlarms, r
	case n%40 == 3:
		r.Kind = wire.KindKiosk
		r.Vals = map[string]wire.Value{"event": wire.Text("ticket_issued"), "ticket": wire.Text(fmt.Sprintf("A%03d", round%1000)), "wait_s": wire.Int(int64(rng.IntN(900)))}
		return wire.StreamEvents, r
	case dev%2 == 0:
		r.Kind = wire.KindPower
		r.Vals = map[string]wire.Value{
			"energy_kwh": wire.Dec(int64(dev)*100000+int64(round)*37, -2), "voltage_a_v": wire.Dec(2200+int64(rng.IntN(40)), -1),
			"current_a_a": wire.Dec(int64(rng.IntN(10000)), -3), "power_kw": wire.Dec(int64(rng.IntN(50000)), -4), "pf": wire.Dec(900+int64(rng.IntN(99)), -3),
		}
	default:
		r.Kind = wire.KindWater
		r.Vals = map[string]wire.Value{"flow_m3": wire.Dec(int64(dev)*1000+int64(round)*3, -2), "valve": wire.Text("open"), "battery_low": wire.Bool(false)}
	}
	return wire.StreamTelemetry, r
}

// backlog is the records stored and not yet acknowledged, all streams.
func (g *gateway) backlog() int64 {
	var n int64
	for _, q := range g.queues {
		n += q.Stats().Backlog
	}
	return n
}

func (g *gateway) close() {
	_ = g.client.Close()
	_ = g.db.Close()
}
