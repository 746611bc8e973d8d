package county_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/uplink/county"
	"github.com/townlink/townlink/uplink/county/pgstore"
	"github.com/townlink/townlink/uplink/county/pgstore/pgtest"
	"github.com/townlink/townlink/uplink/wire"
)

const (
	cty = "320583"
	twp = "320583104"
)

func openStore(t *testing.T) *pgstore.Store {
	t.Helper()
	srv := pgtest.Start(t)
	s, err := pgstore.Open(context.Background(), srv.DSN, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func rec(seq uint64, kwh int64) wire.Record {
	return wire.Record{Seq: seq, Dev: "m1", Kind: wire.KindPower, TS: 1_700_000_000_000 + int64(seq), TSrc: wire.TSrcDevice,
		Grid: "g-07", Vals: map[string]wire.Value{"energy_kwh": wire.Dec(kwh, -2), "pf": wire.Float(0.5), "ok": wire.Bool(true)}}
}

func msg(t *testing.T, gw, stream string, recs ...wire.Record) county.Message {
	t.Helper()
	p, err := wire.Encode(&wire.Batch{V: 1, GW: gw, Stream: stream, Recs: recs})
	if err != nil {
		t.Fatal(err)
	}
	return county.Message{Topic: wire.Topic(cty, twp, gw, stream), Payload: p, Received: time.Now()}
}

// ackLog is the Publisher of these tests: it keeps the acks published.
type ackLog struct {
	mu   sync.Mutex
	acks map[string]uint64 // topic → highest upto
}

func (a *ackLog) Publish(_ context.Context, topic string, p []byte) error {
	ack, err := wire.DecodeAck(p)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.acks == nil {
		a.acks = map[string]uint64{}
	}
	a.acks[topic+"#"+ack.Stream] = max(a.acks[topic+"#"+ack.Stream], ack.Upto)
	return nil
}

func (a *ackLog) upto(gw, stream string) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.acks[wire.Topic(cty, twp, gw, wire.StreamAck)+"#"+stream]
}

func count(t *testing.T, s *pgstore.Store, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := s.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestDuplicateDeliveryNeverMakesASecondRow(t *testing.T) {
	s := openStore(t)
	acks := &ackLog{}
	in, err := county.New(county.Config{Store: s, Acks: acks})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m := msg(t, "gw-1", wire.StreamTelemetry, rec(1, 12345678), rec(2, 12345679))
	res, err := in.Handle(ctx, []county.Message{m, m})
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 2 || res.Duplicates != 2 {
		t.Fatalf("first delivery (twice in one commit): %+v", res)
	}
	res, err = in.Handle(ctx, []county.Message{m})
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 0 || res.Duplicates != 2 || res.Conflicts != 0 {
		t.Fatalf("redelivery: %+v", res)
	}
	if n := count(t, s, "SELECT count(*) FROM telemetry"); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
	if n := count(t, s, "SELECT count(*) FROM telemetry_points"); n != 6 {
		t.Fatalf("%d points, want 6", n)
	}
	var kwh, grid, township string
	if err := s.Pool().QueryRow(ctx, `SELECT p.num::text, t.grid, t.township FROM telemetry t JOIN telemetry_points p USING (gw, seq)
		WHERE t.gw = 'gw-1' AND t.seq = 1 AND p.name = 'energy_kwh'`).Scan(&kwh, &grid, &township); err != nil {
		t.Fatal(err)
	}
	if kwh != "123456.78" || grid != "g-07" || township != twp {
		t.Fatalf("energy_kwh %q grid %q township %q", kwh, grid, township)
	}
	// The redelivery is acknowledged again, so a gateway whose first ack
	// was lost is not stuck.
	if got := acks.upto("gw-1", wire.StreamTelemetry); got != 2 {
		t.Fatalf("ack upto %d, want 2", got)
	}
	if n := count(t, s, "SELECT duplicates FROM ingest_counters WHERE worker = 'test'"); n != 4 {
		t.Fatalf("counted %d duplicates, want 4", n)
	}
}

func TestPayloadContradictingItsTopicIsRefused(t *testing.T) {
	s := openStore(t)
	in, err := county.New(county.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	m := msg(t, "gw-1", wire.StreamTelemetry, rec(1, 1))
	m.Topic = wire.Topic(cty, twp, "gw-2", wire.StreamTelemetry) // gw-2's credentials, gw-1's name
	other := msg(t, "gw-1", wire.StreamAlarms, rec(1, 1))
	other.Topic = wire.Topic(cty, twp, "gw-1", wire.StreamEvents) // alarms payload on events
	garbage := county.Message{Topic: wire.Topic(cty, twp, "gw-1", wire.StreamEvents), Payload: []byte{0xff, 0x00}}
	res, err := in.Handle(context.Background(), []county.Message{m, other, garbage})
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 0 || res.Problems != 3 {
		t.Fatalf("result %+v", res)
	}
	if n := count(t, s, "SELECT count(*) FROM telemetry") + count(t, s, "SELECT count(*) FROM events"); n != 0 {
		t.Fatalf("%d rows stored from refused payloads", n)
	}
	if n := count(t, s, "SELECT count(*) FROM audit WHERE kind = 'identity' AND gw IN ('gw-1', 'gw-2')"); n != 2 {
		t.Fatalf("%d identity problems audited, want 2", n)
	}
	if n := count(t, s, "SELECT count(*) FROM audit WHERE kind = 'malformed'"); n != 1 {
		t.Fatalf("%d malformed audited, want 1", n)
	}
}

func TestConflictingCopyIsAuditedAndFirstKept(t *testing.T) {
	s := openStore(t)
	in, _ := county.New(county.Config{Store: s})
	ctx := context.Background()
	if _, err := in.Handle(ctx, []county.Message{msg(t, "gw-1", wire.StreamTelemetry, rec(1, 100))}); err != nil {
		t.Fatal(err)
	}
	res, err := in.Handle(ctx, []county.Message{msg(t, "gw-1", wire.StreamTelemetry, rec(1, 999))})
	if err != nil {
		t.Fatal(err)
	}
	if res.Conflicts != 1 || res.Inserted != 0 {
		t.Fatalf("%+v", res)
	}
	if n := count(t, s, "SELECT count(*) FROM telemetry_points WHERE name = 'energy_kwh' AND num = 1.00"); n != 1 {
		t.Fatalf("first copy not kept")
	}
	if n := count(t, s, "SELECT count(*) FROM audit WHERE kind = 'conflict' AND seq = 1"); n != 1 {
		t.Fatalf("conflict not audited")
	}
}

func TestProgressWaitsForHolesAndJumpsGaps(t *testing.T) {
	s := openStore(t)
	acks := &ackLog{}
	in, _ := county.New(county.Config{Store: s, Acks: acks})
	ctx := context.Background()
	step := func(want uint64, m county.Message) {
		t.Helper()
		res, err := in.Handle(ctx, []county.Message{m})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Progress) != 1 || res.Progress[0].Upto != want {
			t.Fatalf("progress %+v, want upto %d", res.Progress, want)
		}
	}
	step(0, msg(t, "gw-1", wire.StreamEvents, rec(3, 3), rec(4, 4)))
	if got := acks.upto("gw-1", wire.StreamEvents); got != 0 {
		t.Fatalf("acked %d before seq 1 was stored", got)
	}
	step(4, msg(t, "gw-1", wire.StreamEvents, rec(1, 1), rec(2, 2)))
	step(4, msg(t, "gw-1", wire.StreamEvents, rec(9, 9)))
	gap := wire.GapRecord("gw-1", 5, 7, "quota", 1_700_000_000_000)
	gap.Seq = 8
	step(9, msg(t, "gw-1", wire.StreamEvents, gap))
	if got := acks.upto("gw-1", wire.StreamEvents); got != 9 {
		t.Fatalf("acked %d, want 9", got)
	}
	if n := count(t, s, "SELECT count(*) FROM gaps WHERE from_seq = 5 AND to_seq = 7 AND seq = 8"); n != 1 {
		t.Fatalf("gap not stored")
	}
}

func TestEvidenceChainAndSignaturesChecked(t *testing.T) {
	s := openStore(t)
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	in, _ := county.New(county.Config{Store: s, Keys: map[string]wire.Verifier{"gw-1": wire.Ed25519Verifier(key.Public().(ed25519.PublicKey))}})
	recs, _ := sealed(t, key, 4)
	ctx := context.Background()
	// Out of order: the second half first.
	for _, m := range []county.Message{msg(t, "gw-1", wire.StreamEvidence, recs[2:]...), msg(t, "gw-1", wire.StreamEvidence, recs[:2]...)} {
		if _, err := in.Handle(ctx, []county.Message{m}); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, s, "SELECT count(*) FROM evidence WHERE sig_checked"); n != 4 {
		t.Fatalf("%d evidence rows with checked signatures, want 4", n)
	}
	if n := count(t, s, "SELECT count(*) FROM audit"); n != 0 {
		t.Fatalf("%d problems on a good chain", n)
	}
	// Someone without the key alters record 2 of gw-2's copy and re-seals.
	forged := append([]wire.Record(nil), recs[:2]...)
	forged[1].Vals = map[string]wire.Value{"file_id": wire.Text("swapped")}
	h, _ := wire.ChainHash(&forged[1])
	forged[1].Hash = h[:]
	in2, _ := county.New(county.Config{Store: s, Keys: map[string]wire.Verifier{"": wire.Ed25519Verifier(key.Public().(ed25519.PublicKey))}})
	if _, err := in2.Handle(ctx, []county.Message{msg(t, "gw-2", wire.StreamEvidence, forged...)}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "SELECT count(*) FROM audit WHERE kind = 'chain' AND gw = 'gw-2' AND seq = 2"); n != 1 {
		t.Fatalf("re-sealed record not audited")
	}
	if n := count(t, s, "SELECT count(*) FROM evidence WHERE gw = 'gw-2'"); n != 1 {
		t.Fatalf("%d evidence rows of gw-2, want 1 (the re-sealed record is not stored)", n)
	}

	// The contract's audit over what is stored: gw-1's chain is whole and
	// signed until its status announces a fifth record that never came.
	pub := wire.Ed25519Verifier(key.Public().(ed25519.PublicKey))
	audit := func() map[string]*wire.StreamReport {
		t.Helper()
		reps, err := s.AuditEvidence(ctx, map[string]wire.Verifier{"": pub})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*wire.StreamReport{}
		for i := range reps {
			out[reps[i].GW] = &reps[i]
		}
		return out
	}
	if r := audit(); r["gw-1"] == nil || r["gw-2"] == nil || !r["gw-1"].OK() || !r["gw-1"].SigChecked || r["gw-2"].MaxSeq != 1 {
		t.Fatalf("gw-1 %+v\ngw-2 %+v", r["gw-1"], r["gw-2"])
	}
	st := &wire.Status{V: 1, GW: "gw-1", State: wire.StateOnline, TS: 1_700_000_001_000, Version: "t", Boot: "b",
		Backlog: map[string]uint64{}, Dropped: map[string]uint64{}, Devices: map[string]string{}, Clock: wire.ClockSynced,
		LastSeq: map[string]uint64{wire.StreamEvidence: 5}}
	p, err := wire.EncodeStatus(st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Handle(ctx, []county.Message{{Topic: wire.Topic(cty, twp, "gw-1", wire.StreamStatus), Payload: p}}); err != nil {
		t.Fatal(err)
	}
	if r := audit()["gw-1"]; r.OK() || len(r.Missing) != 1 || r.Missing[0] != (wire.Range{From: 5, To: 5}) {
		t.Fatalf("announced tail not reported missing: %+v", r)
	}
}

// Four workers get overlapping, shuffled deliveries of one stream at once:
// every seq is stored once and the progress reaches the end.
func TestConcurrentWorkersShareAStream(t *testing.T) {
	s := openStore(t)
	acks := &ackLog{}
	in, _ := county.New(county.Config{Store: s, Acks: acks})
	const n = 400
	var msgs []county.Message
	for seq := uint64(1); seq <= n; seq += 4 {
		m := msg(t, "gw-1", wire.StreamTelemetry, rec(seq, 1), rec(seq+1, 1), rec(seq+2, 1), rec(seq+3, 1))
		msgs = append(msgs, m, m) // every message delivered twice
	}
	rand.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w * 5; i < len(msgs); i += 20 {
				if _, err := in.Handle(context.Background(), msgs[i:min(i+5, len(msgs))]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := count(t, s, "SELECT count(*) FROM telemetry"); got != n {
		t.Fatalf("%d rows, want %d", got, n)
	}
	if got := acks.upto("gw-1", wire.StreamTelemetry); got != n {
		t.Fatalf("acked up to %d, want %d", got, n)
	}
}

func TestNewNeedsAStore(t *testing.T) {
	if _, err := county.New(county.Config{}); !errors.Is(err, county.ErrConfig) {
		t.Fatalf("err %v", err)
	}
}
