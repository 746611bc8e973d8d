package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/townlink/townlink/gateway/identity"
	"github.com/townlink/townlink/uplink/wire"
)

const sgw = "gw-test-01"

func stopic(gw, stream string) string { return wire.Topic("320583", "320583104", gw, stream) }

type capMsg struct {
	topic   string
	payload []byte
}

// signedChain seals evidence records first.. with signer (nil: unsigned),
// each record i (1-based, from the fixture) altered by edit when given.
func signedChain(t *testing.T, signer wire.Signer, first uint64, idx []int, prev []byte, edit func(int, *wire.Record)) (stored, hashes [][]byte) {
	t.Helper()
	s := wire.NewSealer(wire.StreamEvidence, signer)
	for j, i := range idx {
		r := wire.Record{Dev: "zfy-001", Kind: wire.KindRecorder, TS: 1764495000000 + int64(i), TSrc: wire.TSrcDevice,
			Vals: map[string]wire.Value{"file_id": wire.Text("F" + strconv.Itoa(i)), "size_bytes": wire.Int(int64(1000 * i))}}
		if edit != nil {
			edit(i, &r)
		}
		p, err := wire.EncodeRecord(&r)
		if err != nil {
			t.Fatal(err)
		}
		out, h, err := s.Seal(first+uint64(j), p, prev)
		if err != nil {
			t.Fatal(err)
		}
		stored, hashes, prev = append(stored, out), append(hashes, h), h
	}
	return stored, hashes
}

func batches(gw, stream string, stored [][]byte) []capMsg {
	var out []capMsg
	for i := 0; i < len(stored); i += 4 {
		out = append(out, capMsg{stopic(gw, stream), wire.AppendBatch(nil, gw, stream, stored[i:min(i+4, len(stored))])})
	}
	return out
}

func statusOf(t *testing.T, signer wire.Signer, ts int64, last uint64, head []byte) capMsg {
	t.Helper()
	s := &wire.Status{V: 1, GW: sgw, State: wire.StateOnline, TS: ts, Version: "test", Boot: "b1", Clock: wire.ClockSynced,
		LastSeq: map[string]uint64{wire.StreamEvidence: last}}
	if err := wire.SignHead(signer, s, last, head); err != nil {
		t.Fatal(err)
	}
	p, err := wire.EncodeStatus(s)
	if err != nil {
		t.Fatal(err)
	}
	return capMsg{stopic(sgw, wire.StreamStatus), p}
}

func writeCapture(t *testing.T, msgs []capMsg) string {
	t.Helper()
	var buf bytes.Buffer
	for _, m := range msgs {
		if err := appendCapture(&buf, m.topic, m.payload); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "capture.cbor")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func seqs(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// Every forgery in the bar makes townlink verify fail and name the record;
// the honest capture verifies with the gateway's key.
func TestVerifySignedCaptures(t *testing.T) {
	key, err := identity.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	forger, err := identity.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pub := key.String()
	stored, hashes := signedChain(t, key, 1, seqs(1, 12), nil, nil)
	status := statusOf(t, key, 1764495100000, 12, hashes[11])
	honest := append(batches(sgw, wire.StreamEvidence, stored), status)

	code, out, errOut := run(t, "verify", "-pub", pub, writeCapture(t, honest))
	if code != 0 || !strings.Contains(out, "received 12") || !strings.Contains(out, "chain ok, signatures verified: OK") {
		t.Fatalf("honest capture: %d\n%s%s", code, out, errOut)
	}
	code, out, _ = run(t, "verify", writeCapture(t, honest))
	if code != 0 || !strings.Contains(out, "signatures NOT CHECKED for gw-test-01/evidence: give the gateway's key with -pub") {
		t.Fatalf("honest capture without -pub: %d\n%s", code, out)
	}
	code, out, _ = run(t, "verify", "-pub", "gw-test-01="+forger.String(), writeCapture(t, honest))
	if code != 1 || !strings.Contains(out, "(seq 1): signature does not verify") {
		t.Fatalf("honest capture, wrong key: %d\n%s", code, out)
	}

	// Records 8-10 replaced by one gap record, sealed into the chain.
	gap := wire.GapRecord(sgw, 8, 10, "quota", 1764495000000)
	gp, _ := wire.EncodeRecord(&gap)
	gs, _, err := wire.NewSealer(wire.StreamEvidence, nil).Seal(8, gp, hashes[6])
	if err != nil {
		t.Fatal(err)
	}
	gapped := append(append(append([][]byte{}, stored[:7]...), gs), stored[10:]...)

	// Record 6 altered, the chain re-sealed from there without the key.
	altered, _ := signedChain(t, nil, 6, seqs(6, 12), hashes[4], func(i int, r *wire.Record) {
		if i == 6 {
			r.Vals["size_bytes"] = wire.Int(1)
		}
	})
	// Record 5 deleted, the rest renumbered and re-sealed with another key.
	renumbered, _ := signedChain(t, forger, 5, seqs(6, 12), hashes[3], nil)

	// A gap record on telemetry covering seqs not yet written.
	tel := func(seq uint64, gapTo uint64) []byte {
		r := wire.Record{Seq: seq, Dev: "m1", Kind: wire.KindPower, TS: 1, TSrc: wire.TSrcGateway, Vals: map[string]wire.Value{"energy_kwh": wire.Dec(1, 0)}}
		if gapTo > 0 {
			r = wire.GapRecord(sgw, seq, gapTo, "quota", 1)
			r.Seq = seq
		}
		p, _ := wire.EncodeRecord(&r)
		return p
	}
	future := capMsg{stopic(sgw, wire.StreamTelemetry), wire.AppendBatch(nil, sgw, wire.StreamTelemetry, [][]byte{tel(1, 0), tel(2, 30)})}

	for _, c := range []struct {
		name string
		msgs []capMsg
		want []string
	}{
		{"gap record replacing evidence 8-10", append(batches(sgw, wire.StreamEvidence, gapped), status),
			[]string{"FORGED seq 8", "gap record on the evidence stream", "MISSING 5-10"}},
		{"gap covering future seqs", []capMsg{future},
			[]string{"FORGED seq 2: message 1 (records 1-2) rejected", "a gap covers only seqs before its own"}},
		{"record altered and re-sealed without the key", append(batches(sgw, wire.StreamEvidence, append(append([][]byte{}, stored[:5]...), altered...)), status),
			[]string{"CHAIN BROKEN", "(seq 6): signature missing", "FORGED seq 12: status of ts 1764495100000 announces evidence head"}},
		{"record deleted, renumbered and re-sealed", batches(sgw, wire.StreamEvidence, append(append([][]byte{}, stored[:4]...), renumbered...)),
			[]string{"CHAIN BROKEN", "(seq 5): signature does not verify"}},
		{"tail cut after the status", append(batches(sgw, wire.StreamEvidence, stored[:8]), status),
			[]string{"status announced last seq 12", "MISSING 9-12 (4)"}},
		{"payload of another gateway", append(honest, capMsg{stopic("gw-test-02", wire.StreamEvidence), honest[0].payload}),
			[]string{"gw-test-02/evidence", "FORGED seq 1: message 5 (records 1-4) rejected", "payload says gateway \"gw-test-01\""}},
		{"payload of another stream", append(honest, capMsg{stopic(sgw, wire.StreamAlarms), honest[0].payload}),
			[]string{"gw-test-01/alarms", "payload says stream \"evidence\""}},
	} {
		code, out, errOut := run(t, "verify", "-pub", pub, writeCapture(t, c.msgs))
		if code != 1 {
			t.Errorf("%s: exit %d, want 1\n%s%s", c.name, code, out, errOut)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", c.name, w, out)
			}
		}
	}
}

func TestVerifyRejectsNonCaptures(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.cbor")
	os.WriteFile(path, []byte{0x01}, 0o644)
	if code, _, errOut := run(t, "verify", path); code != 1 || !strings.Contains(errOut, "not a townlink capture: message 1") {
		t.Fatalf("%d %s", code, errOut)
	}
	if code, _, errOut := run(t, "verify", "-pub", "ed25519:short", path); code != 1 || !strings.Contains(errOut, "bad key") {
		t.Fatalf("bad -pub: %d %s", code, errOut)
	}
}

// FuzzReadCapture: never panics; every message it hands out is one it
// was given back unchanged when written by appendCapture.
func FuzzReadCapture(f *testing.F) {
	var buf bytes.Buffer
	appendCapture(&buf, "townlink/v1/320583/320583104/gw/telemetry", []byte{0xa0})
	f.Add(buf.Bytes())
	f.Add([]byte{0xa1, 0x61, 'v', 0x01})
	f.Add([]byte{0x82, 0x60, 0x40})
	f.Fuzz(func(t *testing.T, data []byte) {
		var msgs []capMsg
		err := readCapture(bytes.NewReader(data), func(_ int, topic string, payload []byte) error {
			msgs = append(msgs, capMsg{topic, payload})
			return nil
		})
		if err != nil {
			return
		}
		var again bytes.Buffer
		for _, m := range msgs {
			if m.topic == "" {
				return // an old capture: not re-written in the old form
			}
			appendCapture(&again, m.topic, m.payload)
		}
		var back []capMsg
		if err := readCapture(bytes.NewReader(again.Bytes()), func(_ int, topic string, payload []byte) error {
			back = append(back, capMsg{topic, payload})
			return nil
		}); err != nil || len(back) != len(msgs) {
			t.Fatalf("re-written capture: %v, %d of %d messages", err, len(back), len(msgs))
		}
		for i := range back {
			if back[i].topic != msgs[i].topic || !bytes.Equal(back[i].payload, msgs[i].payload) {
				t.Fatalf("message %d changed", i)
			}
		}
	})
}

func TestIDPrintsTheSameKey(t *testing.T) {
	cfg := demoConfig(t)
	code, out, errOut := run(t, "id", "-c", cfg)
	if code != 0 || !strings.HasPrefix(out, "ed25519:") || !strings.Contains(errOut, "gateway gw-zhoushi-01") {
		t.Fatalf("id = %d %q %q", code, out, errOut)
	}
	if _, err := identity.ParsePublic(strings.TrimSpace(out)); err != nil {
		t.Fatal(err)
	}
	code, again, _ := run(t, "id", "-config", cfg)
	if code != 0 || again != out {
		t.Fatalf("second id = %d %q, first %q", code, again, out)
	}
	// The key file is where the gateway looks, and private.
	path := strings.TrimSpace(errOut[strings.Index(errOut, "key file ")+len("key file "):])
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || filepath.Base(filepath.Dir(path)) != "identity" {
		t.Fatalf("key file %s: %v %v", path, fi, err)
	}
	os.Chmod(path, 0o644)
	if code, _, errOut := run(t, "id", "-c", cfg); code != 1 || !strings.Contains(errOut, "chmod 600 "+path) {
		t.Fatalf("id with an open key file = %d %q", code, errOut)
	}
}
