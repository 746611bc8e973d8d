package wire

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func addGoldenSeeds(f *testing.F, names ...string) {
	for _, n := range names {
		p, err := os.ReadFile(filepath.Join("testdata", n+".cbor"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
		if len(p) > 10 {
			f.Add(p[:len(p)/2])
			f.Add(append(append([]byte{}, p...), 0))
		}
	}
}

// checkSentinel fails unless err wraps one of the package's sentinels.
func checkSentinel(t *testing.T, err error) {
	for _, s := range []error{ErrMalformed, ErrTooLarge, ErrVersion, ErrSchema, ErrTopic, ErrIdentity} {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error %q wraps no sentinel", err)
}

// FuzzDecode: never panics; errors wrap a sentinel; whatever decodes
// re-encodes, decodes to the same batch, and re-encodes to the same bytes
// (the deterministic form is a fixed point); the fast path agrees.
func FuzzDecode(f *testing.F) {
	addGoldenSeeds(f, "batch-telemetry", "batch-evidence", "gap", "batch-evidence-signed", "batch-rejected")
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Decode(data)
		if err != nil {
			checkSentinel(t, err)
			return
		}
		p, err := Encode(b)
		if err != nil {
			t.Fatalf("decoded batch does not encode: %v", err)
		}
		b2, err := Decode(p)
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if !b.Equal(b2) {
			t.Fatalf("round trip changed the batch:\n%+v\n%+v", b, b2)
		}
		if p2, _ := Encode(b2); !bytes.Equal(p, p2) {
			t.Fatalf("encoding not a fixed point:\n%x\n%x", p, p2)
		}
		recs := make([][]byte, len(b.Recs))
		for i := range b.Recs {
			if recs[i], err = EncodeRecord(&b.Recs[i]); err != nil {
				t.Fatal(err)
			}
		}
		if got := AppendBatch(nil, b.GW, b.Stream, recs); !bytes.Equal(got, p) {
			t.Fatalf("AppendBatch differs from Encode:\n%x\n%x", got, p)
		}
	})
}

// FuzzDecodeRecord: as FuzzDecode for single records, and SetSeq/Seal on
// arbitrary bytes never panic and agree with EncodeRecord on valid ones.
func FuzzDecodeRecord(f *testing.F) {
	g := newGen(77)
	for i := range 8 {
		r := g.record(uint64(i), i%2 == 0)
		p, err := EncodeRecord(&r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = SetSeq(data, 7)
		_, _, _ = Seal(StreamEvidence, data, 7, nil)
		sealed, _, sealErr := Seal(StreamTelemetry, data, 7, nil)
		r, err := DecodeRecord(data)
		if err != nil {
			checkSentinel(t, err)
			return
		}
		// A record that decodes seals on telemetry to the same record with
		// seq 7, unless it carries a chain key.
		if sealErr == nil {
			s, err := DecodeRecord(sealed)
			if err != nil || s.Seq != 7 || s.Dev != r.Dev || len(s.Vals) != len(r.Vals) {
				t.Fatalf("sealed record: %+v, %v (from %+v)", s, err, r)
			}
		} else if r.Prev == nil && r.Hash == nil && r.Sig == nil && r.Alg == "" {
			t.Fatalf("a valid record without chain keys does not seal: %v", sealErr)
		}
		p, err := EncodeRecord(r)
		if err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
		r2, err := DecodeRecord(p)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !r.Equal(r2) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", r, r2)
		}
		got, err := SetSeq(p, r.Seq+1)
		if err != nil {
			t.Fatal(err)
		}
		r.Seq++
		if want, _ := EncodeRecord(r); !bytes.Equal(got, want) {
			t.Fatalf("SetSeq differs from EncodeRecord:\n%x\n%x", got, want)
		}
		sealed, h, err := Seal(StreamEvidence, p, 9, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Seq, r.Prev, r.Hash, r.Sig, r.Alg = 9, make([]byte, 32), nil, nil, ""
		ch, _ := ChainHash(r)
		r.Hash = ch[:]
		if want, _ := EncodeRecord(r); !bytes.Equal(sealed, want) || !bytes.Equal(h, ch[:]) {
			t.Fatalf("Seal differs from EncodeRecord:\n%x\n%x", sealed, want)
		}
		// Signed by a Sealer: decodes, equals its own re-encoding, and
		// verifies with the key (prev: the unsigned record's hash).
		signed, h2, err := NewSealer(StreamEvidence, Ed25519Signer(goldenKey())).Seal(10, p, h)
		if err != nil {
			t.Fatal(err)
		}
		sr, err := DecodeRecord(signed)
		if err != nil {
			t.Fatalf("signed record does not decode: %v", err)
		}
		if again, _ := EncodeRecord(sr); !bytes.Equal(again, signed) || !bytes.Equal(sr.Hash, h2) {
			t.Fatalf("signed record is not in deterministic form:\n%x\n%x", signed, again)
		}
		if err := VerifyChainKey([]Record{*sr}, h, Ed25519Verifier(goldenKey().Public().(ed25519.PublicKey))); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDecodeStatus: never panics; what decodes re-encodes to a fixed point.
func FuzzDecodeStatus(f *testing.F) {
	addGoldenSeeds(f, "status", "status-signed")
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeStatus(data)
		if err != nil {
			checkSentinel(t, err)
			return
		}
		p, err := EncodeStatus(s)
		if err != nil {
			t.Fatalf("decoded status does not encode: %v", err)
		}
		s2, err := DecodeStatus(p)
		if err != nil {
			t.Fatalf("re-encoded status does not decode: %v", err)
		}
		if p2, _ := EncodeStatus(s2); !bytes.Equal(p, p2) {
			t.Fatalf("round trip changed the status:\n%x\n%x", p, p2)
		}
	})
}

// FuzzDecodeCommand covers the three small messages: cmd, cmd-result, ack.
func FuzzDecodeCommand(f *testing.F) {
	addGoldenSeeds(f, "command", "cmd-result", "ack", "command-expires", "cmd-result-status")
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, err := DecodeCommand(data); err != nil {
			checkSentinel(t, err)
		} else {
			p, err := EncodeCommand(c)
			if err != nil {
				t.Fatalf("decoded command does not encode: %v", err)
			}
			c2, err := DecodeCommand(p)
			if err != nil || !commandEqual(c, c2) {
				t.Fatalf("round trip: %+v %+v %v", c, c2, err)
			}
			if id, ok := CommandID(data); !ok || id != c.ID {
				t.Fatalf("CommandID = %q, %v; the command decodes with id %q", id, ok, c.ID)
			}
		}
		if id, ok := CommandID(data); ok && validText("id", id) != nil {
			t.Fatalf("CommandID returned an invalid id %q", id)
		}
		if r, err := DecodeCommandResult(data); err != nil {
			checkSentinel(t, err)
		} else {
			p, err := EncodeCommandResult(r)
			if err != nil {
				t.Fatalf("decoded result does not encode: %v", err)
			}
			r2, err := DecodeCommandResult(p)
			if err != nil || !resultEqual(r, r2) {
				t.Fatalf("round trip: %+v %+v %v", r, r2, err)
			}
		}
		if a, err := DecodeAck(data); err != nil {
			checkSentinel(t, err)
		} else {
			p, err := EncodeAck(a)
			if err != nil {
				t.Fatalf("decoded ack does not encode: %v", err)
			}
			a2, err := DecodeAck(p)
			if err != nil || *a != *a2 {
				t.Fatalf("round trip: %+v %+v %v", a, a2, err)
			}
		}
	})
}

// FuzzCommandID: never panics; an id it finds is valid, bounded text, and
// is the id DecodeCommand finds whenever the command decodes.
func FuzzCommandID(f *testing.F) {
	addGoldenSeeds(f, "command", "command-expires", "cmd-result")
	f.Fuzz(func(t *testing.T, data []byte) {
		id, ok := CommandID(data)
		if ok && (textProblem(id) != "" || len(id) > MaxCommandID) {
			t.Fatalf("CommandID returned %q", id)
		}
		if !ok && id != "" {
			t.Fatalf("CommandID returned %q with false", id)
		}
		if c, err := DecodeCommand(data); err == nil && len(c.ID) <= MaxCommandID && (!ok || id != c.ID) {
			t.Fatalf("DecodeCommand found id %q, CommandID %q %v", c.ID, id, ok)
		}
	})
}

// FuzzAuditMessage: AddMessage never panics on any topic and payload; its
// errors wrap a sentinel; a message it refuses makes the report fail, one
// DecodeTopic accepts is audited like Add would.
func FuzzAuditMessage(f *testing.F) {
	for _, n := range []string{"batch-telemetry", "batch-evidence-signed", "gap", "batch-rejected", "status-signed", "status"} {
		p, err := os.ReadFile(filepath.Join("testdata", n+".cbor"))
		if err != nil {
			f.Fatal(err)
		}
		stream := StreamTelemetry
		switch n {
		case "batch-evidence-signed":
			stream = StreamEvidence
		case "batch-rejected":
			stream = StreamEvents
		case "status-signed", "status":
			stream = StreamStatus
		}
		f.Add(Topic("320583", "320583104", goldenGW, stream), p)
		f.Add(Topic("320583", "320583104", "other", stream), p)
	}
	f.Add("townlink/v1/320583/320583104/gw/cmd", []byte{0xa0})
	f.Fuzz(func(t *testing.T, topic string, data []byte) {
		a := NewAudit()
		a.TrustKey("", Ed25519Verifier(goldenKey().Public().(ed25519.PublicKey)))
		err := a.AddMessage(topic, data)
		rep := a.Report()
		_ = rep.String()
		if err != nil {
			checkSentinel(t, err)
			if rep.OK() {
				t.Fatalf("refused message, report OK: %v\n%s", err, rep)
			}
			return
		}
		if b, err := DecodeTopic(topic, data); err == nil {
			a2 := NewAudit()
			a2.TrustKey("", Ed25519Verifier(goldenKey().Public().(ed25519.PublicKey)))
			a2.Add(b)
			if got, want := rep.String(), a2.Report().String(); got != want {
				t.Fatalf("AddMessage and Add disagree:\n%s\n%s", got, want)
			}
		}
	})
}
