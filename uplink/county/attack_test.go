package county_test

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/townlink/townlink/uplink/county"
	"github.com/townlink/townlink/uplink/wire"
)

// Attacks on the county service by someone on the network path or a
// compromised or buggy gateway (see also wire's attack_test.go).

// sealed returns evidence records 1..n of one gateway, sealed and signed
// with key, and their hashes.
func sealed(t *testing.T, key ed25519.PrivateKey, n int) ([]wire.Record, [][]byte) {
	t.Helper()
	sealer := wire.NewSealer(wire.StreamEvidence, wire.Ed25519Signer(key))
	var recs []wire.Record
	var hashes [][]byte
	var head []byte
	for seq := uint64(1); seq <= uint64(n); seq++ {
		r := wire.Record{Dev: "cam-1", Kind: wire.KindRecorder, TS: 1_700_000_000_000 + int64(seq), TSrc: wire.TSrcDevice,
			Vals: map[string]wire.Value{"file_id": wire.Text("f" + string(rune('0'+seq)))}}
		enc, err := wire.EncodeRecord(&r)
		if err != nil {
			t.Fatal(err)
		}
		out, h, err := sealer.Seal(seq, enc, head)
		if err != nil {
			t.Fatal(err)
		}
		head = h
		d, err := wire.DecodeRecord(out)
		if err != nil {
			t.Fatal(err)
		}
		recs, hashes = append(recs, *d), append(hashes, h)
	}
	return recs, hashes
}

func pubOf(key ed25519.PrivateKey) wire.Verifier {
	return wire.Ed25519Verifier(key.Public().(ed25519.PublicKey))
}

// statusOf is gw's status announcing last, with the evidence head signed
// when head is given.
func statusOf(t *testing.T, key ed25519.PrivateKey, gw string, ts int64, last map[string]uint64, head []byte) county.Message {
	t.Helper()
	st := &wire.Status{V: 1, GW: gw, State: wire.StateOnline, TS: ts, Version: "t", Boot: "b",
		Backlog: map[string]uint64{}, Dropped: map[string]uint64{}, Devices: map[string]string{}, Clock: wire.ClockSynced,
		LastSeq: last}
	if head != nil {
		if err := wire.SignHead(wire.Ed25519Signer(key), st, last[wire.StreamEvidence], head); err != nil {
			t.Fatal(err)
		}
	}
	p, err := wire.EncodeStatus(st)
	if err != nil {
		t.Fatal(err)
	}
	return county.Message{Topic: wire.Topic(cty, twp, gw, wire.StreamStatus), Payload: p, Received: time.Now()}
}

// A record above wire.MaxSeq cannot be stored (bigint): it must be audited
// and the rest of the commit stored, not fail the commit forever (the
// caller would never acknowledge the broker's messages, which would come
// back again and again, with every other message of the commit).
func TestAttackSeqAboveMaxIsAuditedNotAPoisonMessage(t *testing.T) {
	s := openStore(t)
	in, _ := county.New(county.Config{Store: s})
	r := rec(1, 1)
	r.Seq = wire.MaxSeq + 1
	enc, err := wire.EncodeRecord(&r)
	if err != nil {
		t.Fatal(err)
	}
	huge := county.Message{Topic: wire.Topic(cty, twp, "gw-1", wire.StreamTelemetry),
		Payload: wire.AppendBatch(nil, "gw-1", wire.StreamTelemetry, [][]byte{enc}), Received: time.Now()}
	res, err := in.Handle(context.Background(), []county.Message{huge, msg(t, "gw-2", wire.StreamTelemetry, rec(1, 1))})
	if err != nil {
		t.Fatalf("commit failed: %v", err)
	}
	if res.Inserted != 1 || res.Problems != 1 {
		t.Fatalf("%+v", res)
	}
	if n := count(t, s, "SELECT count(*) FROM audit WHERE kind = 'malformed' AND gw = 'gw-1'"); n != 1 {
		t.Fatalf("seq above the maximum not audited")
	}
}

// A gap record on alarms that says quota (alarms are never discarded) is
// refused: it neither covers the seqs nor moves the acknowledgement.
func TestAttackQuotaGapOnAlarmsMovesNoAck(t *testing.T) {
	s := openStore(t)
	acks := &ackLog{}
	in, _ := county.New(county.Config{Store: s, Acks: acks})
	gap := wire.GapRecord("gw-1", 2, 4, "quota", 1_700_000_000_000)
	gap.Seq = 5
	enc, err := wire.EncodeRecord(&gap)
	if err != nil {
		t.Fatal(err)
	}
	forged := county.Message{Topic: wire.Topic(cty, twp, "gw-1", wire.StreamAlarms),
		Payload: wire.AppendBatch(nil, "gw-1", wire.StreamAlarms, [][]byte{enc}), Received: time.Now()}
	if _, err := in.Handle(context.Background(), []county.Message{msg(t, "gw-1", wire.StreamAlarms, rec(1, 1)), forged}); err != nil {
		t.Fatal(err)
	}
	if got := acks.upto("gw-1", wire.StreamAlarms); got != 1 {
		t.Fatalf("acked alarms up to %d, want 1", got)
	}
	if n := count(t, s, "SELECT count(*) FROM gaps"); n != 0 {
		t.Fatalf("forged gap stored")
	}
	// The refused message is kept as received, in its audit row.
	if n := count(t, s, "SELECT count(*) FROM audit WHERE kind = 'malformed' AND payload = $1", forged.Payload); n != 1 {
		t.Fatalf("refused message not kept")
	}
}

// An evidence record altered on the way (re-sealed without the key)
// arrives before the genuine copy. The county must not store it as the
// first copy, nor acknowledge it: the gateway would delete the genuine
// record, and its later delivery would be discarded as a conflict.
func TestAttackForgedEvidenceIsNotStoredNorAcknowledged(t *testing.T) {
	s := openStore(t)
	acks := &ackLog{}
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	in, _ := county.New(county.Config{Store: s, Acks: acks, Keys: map[string]wire.Verifier{"gw-1": pubOf(key)}})
	recs, _ := sealed(t, key, 4)
	forged := append([]wire.Record(nil), recs[:3]...)
	forged[1].Vals = map[string]wire.Value{"file_id": wire.Text("swapped")}
	h, _ := wire.ChainHash(&forged[1])
	forged[1].Hash = h[:]
	forged[2].Prev = h[:] // and the link after it, so that only the signature betrays it
	h, _ = wire.ChainHash(&forged[2])
	forged[2].Hash = h[:]
	ctx := context.Background()
	if _, err := in.Handle(ctx, []county.Message{msg(t, "gw-1", wire.StreamEvidence, forged...)}); err != nil {
		t.Fatal(err)
	}
	if got := acks.upto("gw-1", wire.StreamEvidence); got != 1 {
		t.Fatalf("acked evidence up to %d after a forged record 2, want 1", got)
	}
	if n := count(t, s, "SELECT count(*) FROM audit WHERE kind = 'chain' AND seq = 2"); n != 1 {
		t.Fatalf("forged record not audited")
	}
	// Kept apart, as received (nothing is lost if it was genuine after
	// all, say signed with a key not registered yet).
	if n := count(t, s, "SELECT count(*) FROM quarantine WHERE gw = 'gw-1' AND stream = 'evidence' AND seq IN (2, 3)"); n != 2 {
		t.Fatalf("%d records quarantined, want 2", n)
	}
	// The genuine records arrive: all four are stored, as signed.
	res, err := in.Handle(ctx, []county.Message{msg(t, "gw-1", wire.StreamEvidence, recs...)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Conflicts != 0 || res.Inserted != 3 {
		t.Fatalf("%+v", res)
	}
	if n := count(t, s, "SELECT count(*) FROM evidence_points WHERE t = 'swapped'"); n != 0 {
		t.Fatalf("forged contents stored")
	}
	if got := acks.upto("gw-1", wire.StreamEvidence); got != 4 {
		t.Fatalf("acked %d, want 4", got)
	}
	reps, err := s.AuditEvidence(ctx, map[string]wire.Verifier{"gw-1": pubOf(key)})
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || !reps[0].OK() || !reps[0].SigChecked {
		t.Fatalf("%+v", reps)
	}
}

// A copy of a seq with other contents (a gateway whose store was wiped
// starts its seqs at 1 again; someone replays an altered record) is
// audited, and kept: the county acknowledges the seq, so the gateway
// deletes its copy, and the county must not have thrown it away.
func TestAttackConflictingCopyIsKept(t *testing.T) {
	s := openStore(t)
	acks := &ackLog{}
	in, _ := county.New(county.Config{Store: s, Acks: acks})
	ctx := context.Background()
	if _, err := in.Handle(ctx, []county.Message{msg(t, "gw-1", wire.StreamTelemetry, rec(1, 100), rec(2, 200), rec(3, 300))}); err != nil {
		t.Fatal(err)
	}
	again := []wire.Record{rec(1, 111), rec(2, 200), rec(3, 333)}
	m := msg(t, "gw-1", wire.StreamTelemetry, again...)
	for range 2 { // delivered twice: kept once
		res, err := in.Handle(ctx, []county.Message{m})
		if err != nil {
			t.Fatal(err)
		}
		if res.Conflicts != 2 || res.Duplicates != 1 {
			t.Fatalf("%+v", res)
		}
	}
	rows, err := s.Pool().Query(ctx, "SELECT seq, raw FROM conflicts WHERE gw = 'gw-1' AND stream = 'telemetry' ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var seqs []int64
	for rows.Next() {
		var seq int64
		var raw []byte
		if err := rows.Scan(&seq, &raw); err != nil {
			t.Fatal(err)
		}
		r, err := wire.DecodeRecord(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Equal(&again[seq-1]) {
			t.Fatalf("kept copy of seq %d is %+v", seq, r)
		}
		seqs = append(seqs, seq)
	}
	if len(seqs) != 2 || seqs[0] != 1 || seqs[1] != 3 {
		t.Fatalf("kept conflicting copies of seqs %v, want [1 3]", seqs)
	}
}

// The tail of the chain cut off, and an old signed status replayed with a
// newer ts so that it becomes the gateway's newest: the store's evidence
// audit must still hold the chain against the highest last seq announced.
func TestAttackReplayedStatusDoesNotHideACutTail(t *testing.T) {
	s := openStore(t)
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	in, _ := county.New(county.Config{Store: s, Keys: map[string]wire.Verifier{"gw-1": pubOf(key)}})
	recs, hashes := sealed(t, key, 6)
	ctx := context.Background()
	msgs := []county.Message{
		msg(t, "gw-1", wire.StreamEvidence, recs[:4]...), // 5 and 6 are cut off
		statusOf(t, key, "gw-1", 1_700_000_002_000, map[string]uint64{wire.StreamEvidence: 6}, hashes[5]),
		statusOf(t, key, "gw-1", 1_700_000_009_000, map[string]uint64{wire.StreamEvidence: 4}, hashes[3]), // replayed, ts bumped
	}
	for _, m := range msgs {
		if _, err := in.Handle(ctx, []county.Message{m}); err != nil {
			t.Fatal(err)
		}
	}
	reps, err := s.AuditEvidence(ctx, map[string]wire.Verifier{"gw-1": pubOf(key)})
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || reps[0].OK() || len(reps[0].Missing) != 1 || reps[0].Missing[0] != (wire.Range{From: 5, To: 6}) {
		t.Fatalf("%+v", reps)
	}
}

// A gateway that signs two different records for one seq (its store
// restored without the platform's head, a bug): each copy verifies on its
// own, the second is kept in conflicts, and the evidence audit over the
// store reports the fork.
func TestAttackForkedEvidenceIsAConflict(t *testing.T) {
	s := openStore(t)
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	in, _ := county.New(county.Config{Store: s, Keys: map[string]wire.Verifier{"gw-1": pubOf(key)}})
	recs, hashes := sealed(t, key, 3)
	fork := recs[2]
	fork.Vals = map[string]wire.Value{"file_id": wire.Text("fork")}
	fork.Seq, fork.Prev, fork.Hash, fork.Sig, fork.Alg = 0, nil, nil, nil, ""
	enc, err := wire.EncodeRecord(&fork)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := wire.NewSealer(wire.StreamEvidence, wire.Ed25519Signer(key)).Seal(3, enc, hashes[1])
	if err != nil {
		t.Fatal(err)
	}
	forked, err := wire.DecodeRecord(out)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, m := range []county.Message{msg(t, "gw-1", wire.StreamEvidence, recs...), msg(t, "gw-1", wire.StreamEvidence, recs[1], *forked)} {
		if _, err := in.Handle(ctx, []county.Message{m}); err != nil {
			t.Fatal(err)
		}
	}
	reps, err := s.AuditEvidence(ctx, map[string]wire.Verifier{"gw-1": pubOf(key)})
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || reps[0].OK() || len(reps[0].Conflicts) != 1 || reps[0].Conflicts[0] != 3 {
		t.Fatalf("%+v", reps)
	}
}

// A rollback whose statuses arrive out of order: the later status (lower
// last seq) first, then the earlier one announcing more.
func TestAttackRollbackSeenOutOfOrder(t *testing.T) {
	s := openStore(t)
	in, _ := county.New(county.Config{Store: s})
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	ctx := context.Background()
	for _, m := range []county.Message{
		statusOf(t, key, "gw-1", 1_700_000_005_000, map[string]uint64{wire.StreamTelemetry: 10}, nil),
		statusOf(t, key, "gw-1", 1_700_000_001_000, map[string]uint64{wire.StreamTelemetry: 8}, nil),  // progress, late
		statusOf(t, key, "gw-1", 1_700_000_003_000, map[string]uint64{wire.StreamTelemetry: 12}, nil), // then rolled back to 10
	} {
		if _, err := in.Handle(ctx, []county.Message{m}); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, s, "SELECT count(*) FROM audit WHERE kind = 'rollback' AND seq = 12"); n != 1 {
		t.Fatalf("%d rollbacks audited, want 1", n)
	}
	if n := count(t, s, "SELECT count(*) FROM audit"); n != 1 {
		t.Fatalf("%d audit rows, want 1", n)
	}
}
