package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/uplink/county"
	"github.com/townlink/townlink/uplink/county/pgstore"
	"github.com/townlink/townlink/uplink/county/pgstore/pgtest"
	"github.com/townlink/townlink/uplink/wire"
)

// report -keys fails (exit status 1) when an evidence chain is not whole
// and signed with the registered key, and passes when it is.
func TestReportKeysFailsOnUnsignedEvidence(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	s, err := pgstore.Open(ctx, srv.DSN, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	r := wire.Record{Dev: "cam-1", Kind: wire.KindRecorder, TS: 1_700_000_000_000, TSrc: wire.TSrcDevice,
		Vals: map[string]wire.Value{"file_id": wire.Text("f1")}}
	enc, err := wire.EncodeRecord(&r)
	if err != nil {
		t.Fatal(err)
	}
	rec, _, err := wire.NewSealer(wire.StreamEvidence, wire.Ed25519Signer(key)).Seal(1, enc, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := county.New(county.Config{Store: s})
	m := county.Message{Topic: wire.Topic("320583", "320583104", "gw-1", wire.StreamEvidence),
		Payload: wire.AppendBatch(nil, "gw-1", wire.StreamEvidence, [][]byte{rec}), Received: time.Now()}
	if _, err := in.Handle(ctx, []county.Message{m}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		key  ed25519.PrivateKey
		pass bool
	}{{key, true}, {ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize)), false}} {
		keys := filepath.Join(dir, "keys")
		line := "gw-1 " + wire.FormatPublicKey(c.key.Public().(ed25519.PublicKey)) + "\n"
		if err := os.WriteFile(keys, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		err := run(ctx, []string{"report", "-pg", srv.DSN, "-keys", keys}, &out, &errb)
		if c.pass != (err == nil) || !strings.Contains(out.String(), "evidence chains      1 audited") {
			t.Fatalf("pass %v: err %v\n%s", c.pass, err, out.String())
		}
	}
}
