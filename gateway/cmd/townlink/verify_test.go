package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/townlink/townlink/uplink/wire"
)

// captureOf seals n evidence records into a chain and frames them into
// batches of 4, as a gateway would publish them.
func captureOf(t *testing.T, n int, tamper func(*wire.Batch)) string {
	t.Helper()
	var prev []byte = make([]byte, 32)
	var recs [][]byte
	for i := 1; i <= n; i++ {
		p, err := wire.EncodeRecord(&wire.Record{Dev: "zfy-001", Kind: "recorder", TS: 1764495000000 + int64(i), TSrc: "device",
			Vals: map[string]wire.Value{"file_id": wire.Text("F" + strings.Repeat("0", i)), "size_bytes": wire.Int(int64(1000 * i))}})
		if err != nil {
			t.Fatal(err)
		}
		out, hash, err := wire.Seal(wire.StreamEvidence, p, uint64(i), prev)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, out)
		prev = hash
	}
	var buf bytes.Buffer
	for i := 0; i < n; i += 4 {
		msg := wire.AppendBatch(nil, "gw-test-01", wire.StreamEvidence, recs[i:min(i+4, n)])
		if tamper != nil {
			b, err := wire.Decode(msg)
			if err != nil {
				t.Fatal(err)
			}
			tamper(b)
			if msg, err = wire.Encode(b); err != nil {
				t.Fatal(err)
			}
		}
		buf.Write(msg)
	}
	path := filepath.Join(t.TempDir(), "capture.cbor")
	os.WriteFile(path, buf.Bytes(), 0o644)
	return path
}

func TestVerifyCapture(t *testing.T) {
	code, out, errOut := run(t, "verify", captureOf(t, 10, nil))
	if code != 0 || !strings.Contains(out, "chain ok") || !strings.Contains(out, "received 10") {
		t.Fatalf("clean capture: %d\n%s%s", code, out, errOut)
	}
	// Someone alters the size of the file in record 6.
	altered := captureOf(t, 10, func(b *wire.Batch) {
		for i := range b.Recs {
			if b.Recs[i].Seq == 6 {
				b.Recs[i].Vals["size_bytes"] = wire.Int(1)
			}
		}
	})
	code, out, _ = run(t, "verify", altered)
	if code != 1 || !strings.Contains(out, "CHAIN BROKEN") || !strings.Contains(out, "(seq 6)") {
		t.Fatalf("altered capture: %d\n%s", code, out)
	}
	// A record removed.
	removed := captureOf(t, 10, func(b *wire.Batch) {
		for i := range b.Recs {
			if b.Recs[i].Seq == 3 {
				b.Recs = append(b.Recs[:i], b.Recs[i+1:]...)
				return
			}
		}
	})
	code, out, _ = run(t, "verify", removed)
	if code != 1 || !strings.Contains(out, "MISSING 3") {
		t.Fatalf("capture with a record removed: %d\n%s", code, out)
	}
	if code, _, errOut := run(t, "verify", "/nonexistent/capture.cbor"); code != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing file: %d %s", code, errOut)
	}
}
