package wire

import (
	"testing"
)

func benchRecord() *Record {
	return &Record{
		Seq: 123456, Dev: "meter-07", Kind: KindPower, TS: 1767225600123, TSrc: TSrcDevice, Grid: "320583104-g12",
		Vals: map[string]Value{
			"energy_kwh": Dec(12345678, -2), "energy_rev_kwh": Dec(12, -2),
			"voltage_a_v": Dec(2297, -1), "current_a_a": Dec(5123, -3),
			"power_kw": Dec(1177, -3), "pf": Dec(998, -3), "freq_hz": Dec(4998, -2),
		},
	}
}

func BenchmarkEncodeRecord(b *testing.B) {
	r := benchRecord()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeRecord(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSetSeq is a seq spliced into an encoded record: alone, and as
// the telemetry sealer does it (checking for chain keys on the way).
func BenchmarkSetSeq(b *testing.B) {
	p, err := EncodeRecord(benchRecord())
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		set  func(seq uint64) error
	}{
		{"SetSeq", func(seq uint64) error { _, err := SetSeq(p, seq); return err }},
		{"SealTelemetry", func(seq uint64) error { _, _, err := Seal(StreamTelemetry, p, seq, nil); return err }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			seq := uint64(1)
			for b.Loop() {
				if err := c.set(seq); err != nil {
					b.Fatal(err)
				}
				seq++
			}
		})
	}
}

func BenchmarkSealEvidence(b *testing.B) {
	p, err := EncodeRecord(benchRecord())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var prev []byte
	seq := uint64(1)
	for b.Loop() {
		_, h, err := Seal(StreamEvidence, p, seq, prev)
		if err != nil {
			b.Fatal(err)
		}
		prev = h
		seq++
	}
}

func benchRecs(b *testing.B) [][]byte {
	recs := make([][]byte, 100)
	r := benchRecord()
	for i := range recs {
		r.Seq = uint64(1000 + i)
		p, err := EncodeRecord(r)
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = p
	}
	return recs
}

// BenchmarkAppendBatch frames 100 encoded records (the forwarder's batch).
func BenchmarkAppendBatch(b *testing.B) {
	recs := benchRecs(b)
	buf := make([]byte, 0, 32<<10)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendBatch(buf[:0], "tl-320583104-01", StreamTelemetry, recs)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkDecode decodes and validates a 100-record batch.
func BenchmarkDecode(b *testing.B) {
	p := AppendBatch(nil, "tl-320583104-01", StreamTelemetry, benchRecs(b))
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendRecord is EncodeRecord into a reused buffer.
func BenchmarkAppendRecord(b *testing.B) {
	r := benchRecord()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendRecord(buf[:0], r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealer: the queue's seal hook, per stream: telemetry (the hot
// path: SetSeq) and evidence signed with Ed25519 (low volume).
func BenchmarkSealer(b *testing.B) {
	p, err := EncodeRecord(benchRecord())
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		stream string
		signer Signer
	}{{"telemetry", StreamTelemetry, nil}, {"evidence-unsigned", StreamEvidence, nil}, {"evidence-ed25519", StreamEvidence, Ed25519Signer(goldenKey())}} {
		b.Run(c.name, func(b *testing.B) {
			s := NewSealer(c.stream, c.signer)
			b.ReportAllocs()
			var state []byte
			seq := uint64(1)
			for b.Loop() {
				_, st, err := s.Seal(seq, p, state)
				if err != nil {
					b.Fatal(err)
				}
				state = st
				seq++
			}
		})
	}
}
