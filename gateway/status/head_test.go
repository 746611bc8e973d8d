package status_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"testing"

	"github.com/townlink/townlink/gateway/status"
	"github.com/townlink/townlink/uplink/badgerq"
	"github.com/townlink/townlink/uplink/wire"
)

// The status announces every stream's last committed seq and the evidence
// chain head signed with the gateway key, so that the platform detects a
// cut tail or a rolled-back store; both survive a restart.
func TestStatusAnnouncesLastSeqAndSignedHead(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer := wire.Ed25519Signer(priv)
	dir := t.TempDir()
	open := func() (*badgerq.DB, *badgerq.Queue, *badgerq.Queue) {
		db, err := badgerq.Open(badgerq.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		ev, err := db.Stream(wire.StreamEvidence, badgerq.StreamOptions{Seal: wire.NewSealer(wire.StreamEvidence, signer).Seal})
		if err != nil {
			t.Fatal(err)
		}
		tel, err := db.Stream(wire.StreamTelemetry, badgerq.StreamOptions{Seal: wire.NewSealer(wire.StreamTelemetry, nil).Seal})
		if err != nil {
			t.Fatal(err)
		}
		return db, ev, tel
	}
	db, ev, tel := open()
	rec := func(dev string) []byte {
		b, err := wire.EncodeRecord(&wire.Record{Dev: dev, Kind: "recorder", TS: 1_760_000_000_000, TSrc: "gateway", Vals: map[string]wire.Value{"file_id": wire.Text(dev)}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ctx := context.Background()
	for _, d := range []string{"a", "b", "c"} {
		if err := ev.Append(ctx, rec(d)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tel.Append(ctx, rec("t1"), rec("t2")); err != nil {
		t.Fatal(err)
	}
	es, err := ev.Peek(ctx, 0, 10)
	if err != nil || len(es) != 3 {
		t.Fatalf("peek: %v %d", err, len(es))
	}
	last, err := wire.DecodeRecord(es[2].Data)
	if err != nil {
		t.Fatal(err)
	}
	snap := func(ev, tel *badgerq.Queue) *wire.Status {
		r := status.New(status.Config{Gateway: "gw-t1", Version: "1.0", Boot: "b1", Signer: signer,
			Queues: map[string]status.Queue{wire.StreamEvidence: ev, wire.StreamTelemetry: tel}})
		b, err := r.Encode(wire.StateOnline)
		if err != nil {
			t.Fatal(err)
		}
		st, err := wire.DecodeStatus(b)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	check := func(when string, st *wire.Status) {
		t.Helper()
		if st.LastSeq[wire.StreamEvidence] != 3 || st.LastSeq[wire.StreamTelemetry] != 2 {
			t.Errorf("%s: last_seq %v, want evidence 3, telemetry 2", when, st.LastSeq)
		}
		if !bytes.Equal(st.EvidenceHead, last.Hash) {
			t.Errorf("%s: evidence_head %x, want the hash of record 3 %x", when, st.EvidenceHead, last.Hash)
		}
		if !ed25519.Verify(pub, wire.HeadMessage("gw-t1", 3, st.EvidenceHead), st.EvidenceHeadSig) {
			t.Errorf("%s: evidence_head_sig does not verify with the gateway key", when)
		}
	}
	check("running", snap(ev, tel))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, ev, tel = open()
	defer db.Close()
	check("after a restart", snap(ev, tel))
}
