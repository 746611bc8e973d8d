package uplink_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/mqttpub"
	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
)

// deadline bounds every wait; it only prevents hangs.
const deadline = 30 * time.Second

// ---- test records and framing ----

// record makes a stored record that carries its own seq (first 8 bytes) and
// some filler, ~180 bytes like an encoded reading.
func record(seq uint64) []byte {
	r := make([]byte, 180)
	binary.BigEndian.PutUint64(r, seq)
	return r
}

// frame is the test's framing: uvarint length + record, concatenated.
func frame(recs [][]byte) ([]byte, error) {
	var out []byte
	for _, r := range recs {
		out = binary.AppendUvarint(out, uint64(len(r)))
		out = append(out, r...)
	}
	return out, nil
}

func seqsOf(t testing.TB, payload []byte) []uint64 {
	var seqs []uint64
	for len(payload) > 0 {
		n, k := binary.Uvarint(payload)
		if k <= 0 || uint64(len(payload)-k) < n || n < 8 {
			t.Errorf("bad frame")
			return seqs
		}
		seqs = append(seqs, binary.BigEndian.Uint64(payload[k:]))
		payload = payload[k+int(n):]
	}
	return seqs
}

// ---- ledger: which seqs a Publish returned nil for ----

type ledger struct {
	mu sync.Mutex
	ok map[uint64]bool
}

func newLedger() *ledger { return &ledger{ok: map[uint64]bool{}} }

func (l *ledger) record(t testing.TB, payload []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range seqsOf(t, payload) {
		l.ok[s] = true
	}
}

func (l *ledger) published(seq uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok[seq]
}

// ---- ctlPublisher: the test decides when and how each Publish returns ----

type call struct {
	seqs []uint64
	res  chan error
}

type ctlPublisher struct {
	t       testing.TB
	ledger  *ledger
	calls   chan *call
	active  atomic.Int32
	maxSeen atomic.Int32
}

func newCtlPublisher(t testing.TB, l *ledger) *ctlPublisher {
	return &ctlPublisher{t: t, ledger: l, calls: make(chan *call, 1000)}
}

func (p *ctlPublisher) Publish(ctx context.Context, topic string, payload []byte) error {
	n := p.active.Add(1)
	defer p.active.Add(-1)
	for {
		m := p.maxSeen.Load()
		if n <= m || p.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	c := &call{seqs: seqsOf(p.t, payload), res: make(chan error, 1)}
	p.calls <- c
	select {
	case err := <-c.res:
		if err == nil {
			p.ledger.record(p.t, payload)
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *ctlPublisher) next(t testing.TB) *call {
	t.Helper()
	select {
	case c := <-p.calls:
		return c
	case <-time.After(deadline):
		t.Fatal("no Publish call")
		return nil
	}
}

// logSignal is a slog.Handler that passes log messages to the test, to
// know when the Forwarder has seen an event.
type logSignal struct{ msgs chan string }

func (h *logSignal) Enabled(context.Context, slog.Level) bool { return true }
func (h *logSignal) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.msgs <- r.Message:
	default:
	}
	return nil
}
func (h *logSignal) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logSignal) WithGroup(string) slog.Handler      { return h }

func (h *logSignal) waitFor(t testing.TB, msg string) {
	t.Helper()
	timeout := time.After(deadline)
	for {
		select {
		case m := <-h.msgs:
			if m == msg {
				return
			}
		case <-timeout:
			t.Fatalf("no log %q", msg)
		}
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", deadline, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// runForwarder runs f in the background. stop cancels it and returns Run's
// error; done is closed when Run has returned.
// newFwd builds a Forwarder, failing the test on a config error.
func newFwd(t testing.TB, cfg uplink.ForwarderConfig) *uplink.Forwarder {
	t.Helper()
	f, err := uplink.NewForwarder(cfg)
	if err != nil {
		t.Fatalf("NewForwarder: %v", err)
	}
	return f
}

func isClosed(err error) bool { return errors.Is(err, uplink.ErrClosed) }

// seededRand returns a random source whose seed is logged; set
// TOWNLINK_SEED to replay a failure.
func seededRand(t testing.TB) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("TOWNLINK_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("TOWNLINK_SEED=%q: %v", v, err)
		}
	}
	t.Logf("random seed %d (TOWNLINK_SEED=%d to replay)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

func runForwarder(t testing.TB, f *uplink.Forwarder) (stop func() error, done <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	fin := make(chan struct{})
	var runErr error
	go func() {
		defer close(fin)
		runErr = f.Run(ctx)
	}()
	stop = func() error {
		cancel()
		select {
		case <-fin:
		case <-time.After(deadline):
			t.Fatal("Run did not return after cancel")
		}
		return runErr
	}
	t.Cleanup(func() { stop() })
	return stop, fin
}

// nextCalls receives k concurrent Publish calls, ordered by first seq (the
// publishes of a window race to the publisher).
func (p *ctlPublisher) nextCalls(t testing.TB, k int) []*call {
	t.Helper()
	var cs []*call
	for range k {
		cs = append(cs, p.next(t))
	}
	slices.SortFunc(cs, func(a, b *call) int { return int(a.seqs[0]) - int(b.seqs[0]) })
	return cs
}

// ---- unit tests with the fake queue ----

func TestForwarderSlidingWindowAcksOutOfOrder(t *testing.T) {
	l := newLedger()
	q := newMemQueue(t, l)
	q.add(20)
	p := newCtlPublisher(t, l)
	var acks atomic.Int64
	stop, _ := runForwarder(t, newFwd(t, uplink.ForwarderConfig{Queue: q, Publisher: p, Topic: "t/telemetry", Frame: frame,
		MaxBatch: 2, Window: 4, OnAck: func(n int) { acks.Add(int64(n)) }}))

	held := p.nextCalls(t, 4)
	for i, c := range held {
		if want := []uint64{uint64(2*i + 1), uint64(2*i + 2)}; !slices.Equal(c.seqs, want) {
			t.Fatalf("call %d carries seqs %v, want %v", i, c.seqs, want)
		}
	}
	// Complete the third batch first: it is acked at once, and a fifth batch
	// goes out while the other three are still outstanding.
	held[2].res <- nil
	waitFor(t, "ack of the third batch", func() bool { return q.isAcked(5, 6) })
	if q.isAcked(1) || q.isAcked(3) || q.isAcked(7) {
		t.Fatal("acked a batch that was not PUBACKed")
	}
	if c := p.next(t); !slices.Equal(c.seqs, []uint64{9, 10}) {
		t.Fatalf("fifth call carries %v, want [9 10]", c.seqs)
	} else {
		held = append(held, c)
	}
	for _, i := range []int{0, 1, 3, 4} {
		held[i].res <- nil
	}
	end := time.Now().Add(deadline)
	for q.ackedCount() < 20 {
		select {
		case c := <-p.calls:
			c.res <- nil
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(end) {
			t.Fatalf("stalled with %d of 20 acked", q.ackedCount())
		}
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	q.check(t, 20)
	if m := p.maxSeen.Load(); m != 4 {
		t.Errorf("max publishes in flight = %d, want the window, 4", m)
	}
	if acks.Load() != 20 {
		t.Errorf("OnAck counted %d, want 20", acks.Load())
	}
}

func TestForwarderRewindsToOldestUnacked(t *testing.T) {
	l := newLedger()
	q := newMemQueue(t, l)
	q.add(10)
	p := newCtlPublisher(t, l)
	logs := &logSignal{msgs: make(chan string, 100)}
	stop, _ := runForwarder(t, newFwd(t, uplink.ForwarderConfig{Queue: q, Publisher: p, Topic: "t/telemetry", Frame: frame,
		MaxBatch: 2, Window: 3, Retry: time.Millisecond, Logger: slog.New(logs)}))

	cs := p.nextCalls(t, 3)
	c0, c1, c2 := cs[0], cs[1], cs[2]
	c1.res <- errors.New("connection lost")
	logs.waitFor(t, "uplink: publish failed")
	// The window is not refilled while failing; the batches in flight finish.
	c2.res <- nil
	c0.res <- nil
	waitFor(t, "acks of the batches around the failed one", func() bool { return q.isAcked(1, 2, 5, 6) })
	if q.isAcked(3) || q.isAcked(4) {
		t.Fatal("acked the failed batch")
	}
	// The next call resends the failed batch (3, 4): nothing else was sent
	// meanwhile, and the acked 5, 6 are not sent again.
	// After the rewind the window refills: the failed batch, then the rest.
	// Had anything been sent while failing, [7 8] would not be in this set.
	cs = p.nextCalls(t, 3)
	for i, want := range [][]uint64{{3, 4}, {7, 8}, {9, 10}} {
		if !slices.Equal(cs[i].seqs, want) {
			t.Fatalf("after the rewind call %d carries %v, want %v", i, cs[i].seqs, want)
		}
		cs[i].res <- nil
	}
	waitFor(t, "all acked", func() bool { return q.ackedCount() == 10 })
	stop()
	q.check(t, 10)
}

func TestForwarderAcksWhileQueueIdle(t *testing.T) {
	l := newLedger()
	q := newMemQueue(t, l)
	q.add(3)
	p := newCtlPublisher(t, l)
	stop, _ := runForwarder(t, newFwd(t, uplink.ForwarderConfig{Queue: q, Publisher: p, Topic: "t/events", Frame: frame}))
	c := p.next(t)
	if !slices.Equal(c.seqs, []uint64{1, 2, 3}) {
		t.Fatalf("got %v", c.seqs)
	}
	c.res <- nil
	// The forwarder is now blocked peeking an empty queue; the ack must not
	// wait for more data.
	waitFor(t, "ack while the queue is empty", func() bool { return q.isAcked(1, 2, 3) })
	q.add(2)
	if c := p.next(t); !slices.Equal(c.seqs, []uint64{4, 5}) {
		t.Fatalf("got %v", c.seqs)
	} else {
		c.res <- nil
	}
	waitFor(t, "ack of live records", func() bool { return q.isAcked(4, 5) })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
	q.check(t, 5)
}

func TestForwarderCancelWaitsForPublishes(t *testing.T) {
	l := newLedger()
	q := newMemQueue(t, l)
	q.add(50)
	p := newCtlPublisher(t, l)
	stop, _ := runForwarder(t, newFwd(t, uplink.ForwarderConfig{Queue: q, Publisher: p, Topic: "t/telemetry", Frame: frame, MaxBatch: 5, Window: 8}))
	for range 8 {
		p.next(t)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if n := p.active.Load(); n != 0 {
		t.Errorf("%d publishes still running after Run returned", n)
	}
	if n := q.ackedCount(); n != 0 {
		t.Errorf("%d records acked, none was PUBACKed", n)
	}
}

func TestForwarderFrameErrorStops(t *testing.T) {
	l := newLedger()
	q := newMemQueue(t, l)
	q.add(4)
	p := newCtlPublisher(t, l)
	bad := errors.New("record too large")
	stop, done := runForwarder(t, newFwd(t, uplink.ForwarderConfig{Queue: q, Publisher: p, Topic: "t/telemetry", MaxBatch: 2,
		Frame: func(recs [][]byte) ([]byte, error) {
			if binary.BigEndian.Uint64(recs[0]) == 3 {
				return nil, bad
			}
			return frame(recs)
		}}))
	p.next(t).res <- nil
	select {
	case <-done:
		if err := stop(); !errors.Is(err, uplink.ErrFrame) || !errors.Is(err, bad) {
			t.Fatalf("Run = %v, want ErrFrame wrapping the cause", err)
		}
	case <-time.After(deadline):
		t.Fatal("Run did not stop on a framing error")
	}
	if q.isAcked(3) || q.isAcked(4) {
		t.Error("acked records that were never published")
	}
}

func TestForwarderClosedQueueStops(t *testing.T) {
	l := newLedger()
	p := newCtlPublisher(t, l)
	q := newMemQueue(t, l)
	q.add(3)
	q.close()
	err := newFwd(t, uplink.ForwarderConfig{Queue: q, Publisher: p, Topic: "t", Frame: frame}).Run(context.Background())
	if !errors.Is(err, uplink.ErrClosed) {
		t.Errorf("Run = %v, want ErrClosed", err)
	}
}

func TestForwarderClosedPublisherStops(t *testing.T) {
	l := newLedger()
	q := newMemQueue(t, l)
	q.add(3)
	pub := publisherFunc(func(context.Context, string, []byte) error {
		return fmt.Errorf("mqttpub: publish: %w", uplink.ErrClosed)
	})
	err := (newFwd(t, uplink.ForwarderConfig{Queue: q, Publisher: pub, Topic: "t", Frame: frame})).Run(context.Background())
	if !errors.Is(err, uplink.ErrClosed) {
		t.Errorf("Run = %v, want ErrClosed", err)
	}
	if q.ackedCount() != 0 {
		t.Error("acked records that were not published")
	}
}

type publisherFunc func(ctx context.Context, topic string, payload []byte) error

func (f publisherFunc) Publish(ctx context.Context, topic string, payload []byte) error {
	return f(ctx, topic, payload)
}

// randPublisher completes publishes after random delays (out of order) and
// fails a fraction of them.
type randPublisher struct {
	t      testing.TB
	ledger *ledger
	mu     sync.Mutex
	rnd    *rand.Rand
	fail   float64
	calls  atomic.Int64
	fails  atomic.Int64
}

func (p *randPublisher) Publish(ctx context.Context, topic string, payload []byte) error {
	p.calls.Add(1)
	p.mu.Lock()
	d := time.Duration(p.rnd.IntN(500)) * time.Microsecond
	failed := p.rnd.Float64() < p.fail
	p.mu.Unlock()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return ctx.Err()
	}
	if failed {
		p.fails.Add(1)
		return errors.New("injected failure")
	}
	p.ledger.record(p.t, payload)
	return nil
}

func TestForwarderRandomFailuresNoLossNoFalseAck(t *testing.T) {
	const n = 3000
	l := newLedger()
	q := newMemQueue(t, l)
	p := &randPublisher{t: t, ledger: l, rnd: seededRand(t), fail: 0.2}
	f := newFwd(t, uplink.ForwarderConfig{Queue: q, Publisher: p, Topic: "t/telemetry", Frame: frame,
		MaxBatch: 50, Window: 8, Retry: 100 * time.Microsecond, MaxRetry: time.Millisecond})
	stop, _ := runForwarder(t, f)
	// A producer appends while the forwarder runs.
	for added := 0; added < n; added += 100 {
		q.add(100)
		time.Sleep(time.Millisecond)
	}
	waitFor(t, "all records acked", func() bool { return q.ackedCount() == n })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
	q.check(t, n)
	if p.fails.Load() == 0 {
		t.Error("no publish failed: the test did not exercise the rewind")
	}
	st := f.Stats()
	if st.Acked != n || st.Retries != uint64(p.fails.Load()) || st.InFlight != 0 || st.LastPublished != n || st.Published < n {
		t.Errorf("stats %+v: want Acked %d, Retries %d (failed publishes), InFlight 0, LastPublished %d, Published ≥ %d",
			st, n, p.fails.Load(), n, n)
	}
	t.Logf("%d publishes (%d failed) for %d records", p.calls.Load(), p.fails.Load(), n)
}

// ---- with a real mosquitto, through mqttpub ----

// recorder wraps the real publisher and records what it returned nil for.
type recorder struct {
	t      testing.TB
	inner  uplink.Publisher
	ledger *ledger
	fails  atomic.Int64

	mu       sync.Mutex
	inflight map[uint64]bool
}

func (r *recorder) Publish(ctx context.Context, topic string, payload []byte) error {
	seqs := seqsOf(r.t, payload)
	r.mu.Lock()
	if r.inflight == nil {
		r.inflight = map[uint64]bool{}
	}
	for _, s := range seqs {
		r.inflight[s] = true
	}
	r.mu.Unlock()
	err := r.inner.Publish(ctx, topic, payload)
	r.mu.Lock()
	for _, s := range seqs {
		delete(r.inflight, s)
	}
	r.mu.Unlock()
	if err == nil {
		r.ledger.record(r.t, payload)
	} else {
		r.fails.Add(1)
	}
	return err
}

// inFlight returns the seqs of the publishes waiting for their PUBACK.
func (r *recorder) inFlight() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uint64
	for s := range r.inflight {
		out = append(out, s)
	}
	return out
}

func newPublisher(t testing.TB, url string) *mqttpub.Client {
	c, err := mqttpub.New(mqttpub.Options{
		Brokers: []string{url}, ClientID: "gw-" + t.Name(), ConnectTimeout: 3 * time.Second, PublishTimeout: 3 * time.Second,
		Backoff: mqttpub.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.Start(ctx)
	t.Cleanup(func() { c.Close(); cancel() })
	return c
}

// seqSink is a plain paho subscriber that counts the seqs it receives.
type seqSink struct {
	mu   sync.Mutex
	seen map[uint64]int
}

func newSeqSink(t testing.TB, url, topic string) *seqSink {
	s := &seqSink{seen: map[uint64]int{}}
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("sink-" + t.Name()).SetProtocolVersion(4))
	if tok := c.Connect(); !tok.WaitTimeout(deadline) || tok.Error() != nil {
		t.Fatalf("sink connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		seqs := seqsOf(t, m.Payload())
		s.mu.Lock()
		for _, q := range seqs {
			s.seen[q]++
		}
		s.mu.Unlock()
	})
	if !tok.WaitTimeout(deadline) || tok.Error() != nil {
		t.Fatalf("sink subscribe: %v", tok.Error())
	}
	return s
}

func (s *seqSink) stats(n int) (missing, dups int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for q := uint64(1); q <= uint64(n); q++ {
		switch c := s.seen[q]; {
		case c == 0:
			missing++
		case c > 1:
			dups += c - 1
		}
	}
	return
}

func (s *seqSink) has(seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[seq] > 0
}

// Mid-way the forwarder is restarted behind a network that delivers its
// publishes but holds back the PUBACKs, then the connection is cut: the
// batches at the broker without a PUBACK are sent again, and every record
// reaches the subscriber at least once; nothing is acked that was not
// PUBACKed.
func TestForwarderMosquittoConnectionCut(t *testing.T) {
	const n, topic, window = 5000, "townlink/v1/320583/320583104/gw1/telemetry", 8
	b := mosquittotest.Start(t)
	proxy := mosquittotest.NewProxy(t, b.Addr)
	sink := newSeqSink(t, b.URL, topic)
	l := newLedger()
	q := newMemQueue(t, l)
	q.add(n)
	client := newPublisher(t, proxy.URL)
	pub := &recorder{t: t, inner: client, ledger: l}
	fwd := newFwd(t, uplink.ForwarderConfig{Queue: q, Publisher: pub, Topic: topic, Frame: frame, Window: window,
		Retry: 10 * time.Millisecond, MaxRetry: 200 * time.Millisecond})

	stop, _ := runForwarder(t, fwd)
	waitFor(t, "a third of the records acked", func() bool { return q.ackedCount() >= n/3 })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	acked := q.ackedCount()

	proxy.Hold() // from now on no PUBACK reaches the client
	stop, _ = runForwarder(t, fwd)
	var held []uint64
	waitFor(t, "a full window at the broker without PUBACKs", func() bool {
		held = pub.inFlight()
		if len(held) < window*uplink.DefaultMaxBatch {
			return false
		}
		for _, s := range held {
			if !sink.has(s) {
				return false
			}
		}
		return true
	})
	if q.ackedCount() != acked {
		t.Fatalf("acked %d records while no PUBACK could arrive", q.ackedCount()-acked)
	}
	proxy.Cut()
	waitFor(t, "all records acked", func() bool { return q.ackedCount() == n })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
	q.check(t, n)
	waitFor(t, "the subscriber to have every record", func() bool { m, _ := sink.stats(n); return m == 0 })
	sink.mu.Lock()
	for _, s := range held {
		if sink.seen[s] < 2 {
			t.Errorf("seq %d reached the broker without a PUBACK but was delivered %d times, want a resend", s, sink.seen[s])
		}
	}
	sink.mu.Unlock()
	_, dups := sink.stats(n)
	t.Logf("%d records held without PUBACK; %d duplicates at the subscriber, %d failed publishes", len(held), dups, pub.fails.Load())
}

// The broker is killed mid-way and restarted: every record is eventually
// PUBACKed and acked, nothing is acked that was not PUBACKed. (What the
// killed broker had accepted but not yet delivered is the broker's loss, so
// this test checks PUBACKs, and the cut test above checks the subscriber.)
func TestForwarderMosquittoBrokerRestart(t *testing.T) {
	const n, topic = 5000, "townlink/v1/320583/320583104/gw1/telemetry"
	b := mosquittotest.Start(t)
	l := newLedger()
	q := newMemQueue(t, l)
	q.add(n)
	client := newPublisher(t, b.URL)
	pub := &recorder{t: t, inner: client, ledger: l}
	stop, _ := runForwarder(t, newFwd(t, uplink.ForwarderConfig{Queue: q, Publisher: pub, Topic: topic, Frame: frame,
		Retry: 10 * time.Millisecond, MaxRetry: 200 * time.Millisecond}))

	waitFor(t, "a third of the records acked", func() bool { return q.ackedCount() >= n/3 })
	b.Stop()
	waitFor(t, "the client to notice", func() bool { return !client.Connected() })
	stalled := q.ackedCount()
	if stalled == n {
		t.Fatal("everything was acked before the broker stopped; make n larger")
	}
	b.Restart(t)
	sink := newSeqSink(t, b.URL, topic)
	// More records arrive after the restart; the subscriber must get these.
	q.add(500)
	waitFor(t, "all records acked", func() bool { return q.ackedCount() == n+500 })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
	q.check(t, n+500)
	waitFor(t, "the records appended after the restart at the subscriber", func() bool {
		for s := uint64(n + 1); s <= n+500; s++ {
			if !sink.has(s) {
				return false
			}
		}
		return true
	})
	t.Logf("acked %d before the outage; %d failed publishes", stalled, pub.fails.Load())
}

// MaxBytes cuts a message before its records exceed the bound; MaxDelay
// lets a short live batch wait for more records.
func TestForwarderBatchesByBytesAndDelay(t *testing.T) {
	l := newLedger()
	q := newMemQueue(t, l)
	q.add(10)
	p := newCtlPublisher(t, l)
	rec := len(record(1))
	stop, _ := runForwarder(t, newFwd(t, uplink.ForwarderConfig{Queue: q, Publisher: p, Topic: "t/telemetry", Frame: frame,
		MaxBatch: 100, MaxBytes: 3*rec + rec/2, Window: 1, MaxDelay: 300 * time.Millisecond}))
	for want := uint64(1); want <= 10; {
		c := p.next(t)
		if c.seqs[0] != want || len(c.seqs) > 3 {
			t.Fatalf("batch %v: want it to start at %d with at most 3 records (bytes bound)", c.seqs, want)
		}
		want += uint64(len(c.seqs))
		c.res <- nil
	}
	// A quiet stream: one record, then two more within the delay, go as one message.
	q.add(1)
	time.Sleep(50 * time.Millisecond)
	q.add(2)
	c := p.next(t)
	if !slices.Equal(c.seqs, []uint64{11, 12, 13}) {
		t.Fatalf("with MaxDelay the live batch was %v, want 11..13 together", c.seqs)
	}
	c.res <- nil
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
}

// A record larger than MaxBytes still goes, alone, between full batches: a
// 300 KiB record (the field broker takes 256 KiB payloads, which a record
// may carry as base64) is never stuck.
func TestForwarderOversizedRecordGoesAlone(t *testing.T) {
	const maxBytes = 256 << 10
	l := newLedger()
	q := newMemQueue(t, l)
	q.add(2)
	big := make([]byte, 300<<10)
	binary.BigEndian.PutUint64(big, 3)
	if err := q.Append(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	q.add(2)
	p := newCtlPublisher(t, l)
	f := newFwd(t, uplink.ForwarderConfig{Queue: q, Publisher: p, Topic: "t/evidence", Frame: frame, MaxBytes: maxBytes, Window: 1})
	stop, _ := runForwarder(t, f)
	for i, want := range [][]uint64{{1, 2}, {3}, {4, 5}} {
		c := p.next(t)
		if !slices.Equal(c.seqs, want) {
			t.Fatalf("message %d carries %v, want %v", i, c.seqs, want)
		}
		c.res <- nil
	}
	waitFor(t, "all acked", func() bool { return q.ackedCount() == 5 })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
	q.check(t, 5)
	if s := f.Stats(); s.Published != 5 || s.Acked != 5 || s.LastPublished != 5 {
		t.Errorf("stats %+v, want 5 published and acked, last seq 5", s)
	}
}
