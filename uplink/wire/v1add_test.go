package wire

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// The v1 additions: every new key decodes when valid, is refused with a
// named error when not, and what came before still decodes.

func TestV1AdditionsRecordRejects(t *testing.T) {
	ev := func() obj {
		r := baseRecord(1)
		r["prev"], r["hash"] = make([]byte, 32), make([]byte, 32)
		r["alg"], r["sig"] = "ed25519", make([]byte, 64)
		return r
	}
	evBatch := func(r obj) obj { return with(batchWithRec(r), "stream", "evidence") }
	if _, err := Decode(enc(t, evBatch(ev()))); err != nil {
		t.Fatalf("signed evidence record: %v", err)
	}
	if _, err := Decode(enc(t, evBatch(with(with(ev(), "alg", "sm2"), "sig", make([]byte, 71))))); err != nil {
		t.Fatalf("another alg: %v", err)
	}
	if _, err := Decode(enc(t, evBatch(with(with(ev(), "alg", nil), "sig", nil)))); err != nil {
		t.Fatalf("unsigned evidence record (older gateways): %v", err)
	}
	raw := []byte("{\"event\":\x00")
	rej := func() obj {
		r := with(baseRecord(1), "kind", "rejected")
		r["vals"] = obj{"reason": "bad json", "topic": "field/k1/event", "event": "", "size": len(raw), "raw_b64": base64.StdEncoding.EncodeToString(raw)}
		return r
	}
	if _, err := Decode(enc(t, batchWithRec(rej()))); err != nil {
		t.Fatalf("rejected record: %v", err)
	}
	gapRec := func(seq uint64, from, to int) obj {
		r := with(with(baseRecord(seq), "kind", "gap"), "dev", "gw-1")
		r["vals"] = obj{"from": from, "to": to, "reason": "quota"}
		return r
	}
	cases := []struct {
		name  string
		in    obj
		needs string
	}{
		{"sig without alg", evBatch(with(ev(), "alg", nil)), "recs[0].alg: missing; required with sig"},
		{"alg without sig", evBatch(with(ev(), "sig", nil)), "recs[0].sig: missing; required with alg"},
		{"ed25519 sig short", evBatch(with(ev(), "sig", make([]byte, 63))), "recs[0].sig: 63 bytes, want 64 for ed25519"},
		{"sig huge", evBatch(with(with(ev(), "alg", "x"), "sig", make([]byte, 257))), "recs[0].sig: 257 bytes, limit 256"},
		{"alg upper case", evBatch(with(ev(), "alg", "Ed25519")), "recs[0].alg: \"Ed25519\": character 0"},
		{"alg empty", evBatch(with(ev(), "alg", "")), "recs[0].alg"},
		{"alg not text", evBatch(with(ev(), "alg", 1)), "recs[0].alg: want text"},
		{"sig not bytes", evBatch(with(ev(), "sig", "x")), "recs[0].sig: want byte string"},
		{"sig on telemetry", batchWithRec(with(with(baseRecord(1), "sig", make([]byte, 64)), "alg", "ed25519")), "recs[0].sig: only allowed on the evidence stream"},
		{"alg on events", with(batchWithRec(with(with(baseRecord(1), "sig", make([]byte, 64)), "alg", "ed25519")), "stream", "events"), "only allowed on the evidence stream"},
		{"gap on evidence", evBatch(with(with(with(gapRec(5, 1, 2), "prev", make([]byte, 32)), "hash", make([]byte, 32)), "dev", "gw-1")), "recs[0].kind: gap record on the evidence stream"},
		{"gap over itself", batchWithRec(gapRec(5, 1, 5)), `recs[0].vals["to"]: gap record 5 covers up to 5`},
		{"gap over the future", batchWithRec(gapRec(5, 7, 9)), `recs[0].vals["to"]: gap record 5 covers up to 9`},
		{"rejected missing raw", batchWithRec(with(rej(), "vals", obj{"reason": "x", "topic": "t", "event": "", "size": 0})), "exactly the points reason, topic, event, size and raw_b64"},
		{"rejected bad base64", batchWithRec(with(rej(), "vals", obj{"reason": "x", "topic": "t", "event": "", "size": 0, "raw_b64": "***"})), `vals["raw_b64"]: rejected: not standard base64`},
		{"rejected wrong size", batchWithRec(with(rej(), "vals", obj{"reason": "x", "topic": "t", "event": "", "size": 3, "raw_b64": "AA=="})), `vals["size"]: rejected: want the int 1`},
		{"rejected reason not text", batchWithRec(with(rej(), "vals", obj{"reason": 1, "topic": "t", "event": "", "size": 1, "raw_b64": "AA=="})), `vals["reason"]: rejected: want text`},
	}
	for _, c := range cases {
		_, err := Decode(enc(t, c.in))
		if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), c.needs) {
			t.Errorf("%s: error %v, want ErrSchema mentioning %q", c.name, err, c.needs)
		}
	}
}

func TestRejectedRecordAndClockSkew(t *testing.T) {
	raw := []byte{0xff, 0x00, '{', 'x'}
	r := RejectedRecord("kiosk-1", "field/kiosk-1/event", "rated", "invalid JSON", raw, 1767225600000)
	r.Seq = 3
	b := &Batch{V: Version, GW: "gw-1", Stream: StreamEvents, Recs: []Record{r}}
	p, err := Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(p)
	if err != nil || !got.Equal(b) {
		t.Fatalf("%+v %v", got, err)
	}
	s, _ := got.Recs[0].Vals["raw_b64"].AsText()
	if back, _ := base64.StdEncoding.DecodeString(s); !bytes.Equal(back, raw) || got.Recs[0].Kind != KindRejected {
		t.Fatalf("raw %q", back)
	}
	// On evidence it is chained and signed like any other record.
	stored, _ := sealAll(t, []Record{r}, 1, nil, Ed25519Signer(testKey("k")))
	if _, err := Decode(AppendBatch(nil, "gw-1", StreamEvidence, stored)); err != nil {
		t.Fatal(err)
	}
	k := Record{Dev: "m", Kind: KindPower, TS: 1, TSrc: TSrcDevice}
	MarkClockSkew(&k, -5000)
	if k.Q != QClockSkew || !k.Vals[PointClockOffset].Equal(Int(-5000)) {
		t.Fatalf("%+v", k)
	}
	if QInvalidPoint != 1 || QInvalidFields != 2 || QClockSkew != 4 {
		t.Fatal("q bits moved: they are part of the contract")
	}
}

func TestV1AdditionsStatus(t *testing.T) {
	base := func() obj {
		return obj{"v": 1, "gw": "gw-1", "state": "online", "ts": 1, "version": "0.1", "boot": "b1",
			"backlog": obj{}, "oldest_unsent_ms": 0, "dropped": obj{}, "devices": obj{}, "clock": "synced"}
	}
	full := func() obj {
		return with(with(with(with(base(), "last_seq", obj{"telemetry": 9, "evidence": 3}),
			"evidence_head", make([]byte, 32)), "evidence_head_sig", make([]byte, 64)), "certs", obj{"client": -3})
	}
	old, err := DecodeStatus(enc(t, base()))
	if err != nil || old.LastSeq != nil || old.EvidenceHead != nil || old.Certs != nil {
		t.Fatalf("old status: %+v %v", old, err)
	}
	s, err := DecodeStatus(enc(t, full()))
	if err != nil || s.LastSeq[StreamEvidence] != 3 || s.Certs["client"] != -3 || len(s.EvidenceHeadSig) != 64 {
		t.Fatalf("new status: %+v %v", s, err)
	}
	for _, c := range []struct {
		in    obj
		needs string
	}{
		{with(full(), "last_seq", obj{"status": 1}), `last_seq["status"]: not a record stream`},
		{with(full(), "last_seq", obj{"evidence": -1}), `last_seq["evidence"]: want unsigned`},
		{with(full(), "last_seq", obj{"telemetry": 1}), `evidence_head: requires last_seq["evidence"]`},
		{with(full(), "evidence_head", make([]byte, 31)), "evidence_head: 31 bytes, want 32"},
		{with(full(), "evidence_head", nil), "evidence_head_sig: requires evidence_head"},
		{with(full(), "evidence_head_sig", []byte{}), "evidence_head_sig: must not be empty"},
		{with(full(), "evidence_head_sig", make([]byte, 300)), "evidence_head_sig: 300 bytes, limit 256"},
		{with(full(), "certs", obj{"client": "soon"}), `certs["client"]: want integer`},
		{with(full(), "certs", []any{1}), "certs: want map"},
	} {
		_, err := DecodeStatus(enc(t, c.in))
		if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), c.needs) {
			t.Errorf("%v: error %v, want ErrSchema mentioning %q", c.in, err, c.needs)
		}
	}
	// alarms: optional, id → text.
	a, err := DecodeStatus(enc(t, with(base(), "alarms", obj{"leak:w1:1": "sev2 leak device:w1: w1 leaks"})))
	if err != nil || a.Alarms["leak:w1:1"] != "sev2 leak device:w1: w1 leaks" {
		t.Fatalf("status with alarms: %+v %v", a, err)
	}
	if old.Alarms != nil {
		t.Fatalf("old status has alarms %v", old.Alarms)
	}
	if b, err := EncodeStatus(a); err != nil {
		t.Fatal(err)
	} else if back, err := DecodeStatus(b); err != nil || len(back.Alarms) != 1 {
		t.Fatalf("alarms round trip: %+v %v", back, err)
	}
	for _, c := range []struct {
		in    obj
		needs string
	}{
		{with(base(), "alarms", obj{"a": 1}), `alarms["a"]: want text`},
		{with(base(), "alarms", []any{"a"}), "alarms: want map"},
	} {
		_, err := DecodeStatus(enc(t, c.in))
		if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), c.needs) {
			t.Errorf("%v: error %v, want ErrSchema mentioning %q", c.in, err, c.needs)
		}
	}
	st := goldenStatus()
	if err := SignHead(Ed25519Signer(testKey("k")), st, 3, make([]byte, 32)); err == nil {
		t.Fatal("SignHead without last_seq")
	}
}

func TestV1AdditionsCommands(t *testing.T) {
	c, err := DecodeCommand(enc(t, obj{"id": "c1", "op": "ping", "expires": int64(1767225600000)}))
	if err != nil || c.Expires != 1767225600000 {
		t.Fatalf("%+v %v", c, err)
	}
	r, err := DecodeCommandResult(enc(t, obj{"id": "c1", "ok": false, "err": "too late", "status": "expired"}))
	if err != nil || r.Status != ResultExpired {
		t.Fatalf("%+v %v", r, err)
	}
	for _, c := range []struct {
		in    []byte
		dec   func([]byte) error
		needs string
	}{
		{enc(t, obj{"id": "1", "op": "ping", "expires": 0}), decCmd, "expires: 0"},
		{enc(t, obj{"id": "1", "op": "ping", "expires": -5}), decCmd, "expires: -5"},
		{enc(t, obj{"id": "1", "op": "ping", "expires": "soon"}), decCmd, "expires: want integer"},
		{enc(t, obj{"id": "1", "ok": false, "err": "x", "status": "later"}), decRes, `status: "later"`},
		{enc(t, obj{"id": "1", "ok": true, "status": "failed"}), decRes, "ok is true exactly for done"},
		{enc(t, obj{"id": "1", "ok": false, "err": "x", "status": "done"}), decRes, "ok is true exactly for done"},
		{enc(t, obj{"id": "1", "ok": false, "err": "x", "status": ""}), decRes, "status: must not be empty"},
		{enc(t, obj{"id": "1", "ok": false, "err": "x", "status": 3}), decRes, "status: want text"},
	} {
		err := c.dec(c.in)
		if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), c.needs) {
			t.Errorf("%x: error %v, want ErrSchema mentioning %q", c.in, err, c.needs)
		}
	}
	for _, s := range []string{ResultDone, ResultFailed, ResultExpired, ResultRefused, ResultMalformed, ResultOverflow, ResultDuplicate} {
		ok := s == ResultDone
		res := &CommandResult{ID: "x", OK: ok, Status: s}
		if !ok {
			res.Err = "because"
		}
		if _, err := EncodeCommandResult(res); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	if _, err := EncodeCommand(&Command{ID: "1", Op: "ping", Expires: -1}); !errors.Is(err, ErrSchema) {
		t.Fatalf("negative expires encoded: %v", err)
	}
}

func TestCommandID(t *testing.T) {
	long := strings.Repeat("x", MaxCommandID+1)
	for _, c := range []struct {
		name string
		in   []byte
		id   string
		ok   bool
	}{
		{"valid", enc(t, obj{"id": "c1", "op": "ping"}), "c1", true},
		{"unknown key", enc(t, obj{"id": "c2", "op": "ping", "bogus": 1}), "c2", true},
		{"bad args", enc(t, obj{"id": "c3", "args": "notamap"}), "c3", true},
		{"trailing garbage", append(enc(t, obj{"id": "c4"}), 0xff, 0x00), "c4", true},
		{"no op", enc(t, obj{"id": "c5"}), "c5", true},
		{"no id", enc(t, obj{"op": "ping"}), "", false},
		{"id not text", enc(t, obj{"id": 7}), "", false},
		{"id empty", enc(t, obj{"id": ""}), "", false},
		{"id too long", enc(t, obj{"id": long}), "", false},
		{"id twice", rawMap(t, "id", "a", "id", "b"), "", false},
		{"id bad utf-8", rawMap(t, "id", cbor.RawMessage{0x62, 0xff, 0xfe}), "", false},
		{"not a map", enc(t, []any{"id", "c1"}), "", false},
		{"truncated", enc(t, obj{"id": "c1", "op": "ping"})[:6], "", false},
		{"empty", nil, "", false},
	} {
		id, ok := CommandID(c.in)
		if id != c.id || ok != c.ok {
			t.Errorf("%s: CommandID = %q, %v; want %q, %v", c.name, id, ok, c.id, c.ok)
		}
	}
}
