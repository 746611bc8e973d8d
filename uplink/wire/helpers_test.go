package wire

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// gen makes random but valid records, reproducibly from a seed.
type gen struct{ r *rand.Rand }

func newGen(seed uint64) *gen { return &gen{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

var (
	genKinds = []string{KindPower, KindWater, KindEnterprise, KindGPIO, KindTraffic, KindRecorder, KindKiosk, KindGateway}
	genTSrcs = []string{TSrcDevice, TSrcGateway, TSrcUnsynced}
	genNames = []string{"a", "pf", "flow_m3", "energy_kwh", "voltage_a_v", "x_quite_long_point_name_24", "a_point_name_just_23_ch", "storage_free_mb", "是否", "z"}
)

func (g *gen) text(maxLen int) string {
	n := g.r.IntN(maxLen + 1)
	var b strings.Builder
	for b.Len() < n {
		switch g.r.IntN(6) {
		case 0:
			b.WriteRune(rune(0x4e00 + g.r.IntN(0x5000))) // CJK
		case 1:
			b.WriteByte(byte(' ' + g.r.IntN(95)))
		default:
			b.WriteByte(byte('a' + g.r.IntN(26)))
		}
	}
	return b.String()
}

func (g *gen) int64() int64 {
	switch g.r.IntN(8) {
	case 0:
		return []int64{0, 1, -1, 23, 24, -24, -25, 255, 256, 65535, 65536, -65537, math.MaxInt32, math.MinInt32, math.MaxInt64, math.MinInt64}[g.r.IntN(16)]
	case 1:
		return int64(g.r.Uint64())
	default:
		return g.r.Int64N(1<<uint(g.r.IntN(62)+1)) - 1<<uint(g.r.IntN(40))
	}
}

func (g *gen) float() float64 {
	for {
		var f float64
		switch g.r.IntN(7) {
		case 0:
			f = math.Float64frombits(g.r.Uint64())
		case 1:
			f = float64(math.Float32frombits(g.r.Uint32()))
		case 2: // float16 subnormals and normals
			f = float16To64(uint16(g.r.Uint32()))
		case 3:
			f = []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 1.5, 229.7, 65504, 65520, 5.960464477539063e-08, 6.103515625e-05, math.MaxFloat32, math.SmallestNonzeroFloat64, math.MaxFloat64, 1e300, 1.0 / 3}[g.r.IntN(16)]
		default:
			f = float64(g.r.Int64N(2000000)-1000000) / float64(int64(1)<<uint(g.r.IntN(30)))
		}
		if !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f
		}
	}
}

func (g *gen) value() Value {
	switch g.r.IntN(5) {
	case 0:
		exp := int32(g.r.IntN(41) - 20)
		if g.r.IntN(20) == 0 {
			exp = []int32{math.MaxInt32, math.MinInt32, 30, -30}[g.r.IntN(4)]
		}
		return Dec(g.int64(), exp)
	case 1:
		return Int(g.int64())
	case 2:
		return Float(g.float())
	case 3:
		return Bool(g.r.IntN(2) == 0)
	}
	return Text(g.text(40))
}

func (g *gen) vals(n int) map[string]Value {
	m := map[string]Value{}
	for range n {
		name := genNames[g.r.IntN(len(genNames))]
		if g.r.IntN(4) == 0 {
			name = g.text(30)
			if name == "" {
				name = "e"
			}
		}
		m[name] = g.value()
	}
	return m
}

// record returns a valid record; evidence records get 32-byte prev/hash
// filler (not a valid chain).
func (g *gen) record(seq uint64, evidence bool) Record {
	r := Record{
		Seq:  seq,
		Dev:  "dev-" + strconv.Itoa(g.r.IntN(1000)),
		Kind: genKinds[g.r.IntN(len(genKinds))],
		TS:   1_700_000_000_000 + g.r.Int64N(1<<40),
		TSrc: genTSrcs[g.r.IntN(len(genTSrcs))],
		Vals: g.vals(g.r.IntN(8)),
	}
	if g.r.IntN(3) == 0 {
		r.Grid = "grid-" + g.text(10)
	}
	if g.r.IntN(4) == 0 {
		r.Q = g.r.Uint64() >> uint(g.r.IntN(64))
	}
	if g.r.IntN(10) == 0 {
		r.TS = g.int64()
	}
	if evidence {
		r.Prev, r.Hash = make([]byte, 32), make([]byte, 32)
		for i := range 32 {
			r.Prev[i], r.Hash[i] = byte(g.r.Uint32()), byte(g.r.Uint32())
		}
		switch g.r.IntN(3) {
		case 0: // signed with Ed25519 (filler)
			r.Alg, r.Sig = AlgEd25519, make([]byte, 64)
		case 1: // an algorithm of a later revision
			r.Alg, r.Sig = "sm2", make([]byte, 1+g.r.IntN(maxSigSize))
		}
		for i := range r.Sig {
			r.Sig[i] = byte(g.r.Uint32())
		}
	}
	return r
}

// batch returns a valid batch of n records starting at seq first.
func (g *gen) batch(gw, stream string, first uint64, n int) *Batch {
	b := &Batch{V: Version, GW: gw, Stream: stream}
	seq := first
	for range n {
		b.Recs = append(b.Recs, g.record(seq, stream == StreamEvidence))
		seq += 1 + uint64(g.r.IntN(3)/2)
	}
	return b
}

// diag writes CBOR diagnostic notation (RFC 8949 §8), indented.
func diag(p []byte) (string, error) {
	var b strings.Builder
	off, err := diagItem(&b, p, 0, 0)
	if err != nil {
		return "", err
	}
	if off != len(p) {
		return "", fmt.Errorf("%d trailing bytes", len(p)-off)
	}
	b.WriteByte('\n')
	return b.String(), nil
}

func diagItem(b *strings.Builder, p []byte, off, indent int) (int, error) {
	major, arg, n, err := head(p, off)
	if err != nil {
		return 0, err
	}
	off += n
	pad := strings.Repeat("  ", indent+1)
	switch major {
	case majUint:
		b.WriteString(strconv.FormatUint(arg, 10))
	case majNeg:
		if arg == math.MaxUint64 {
			b.WriteString("-18446744073709551616")
		} else {
			fmt.Fprintf(b, "-%d", arg+1)
		}
	case majBytes:
		fmt.Fprintf(b, "h'%x'", p[off:off+int(arg)])
		off += int(arg)
	case majText:
		b.WriteString(strconv.Quote(string(p[off : off+int(arg)])))
		off += int(arg)
	case majArray:
		b.WriteString("[")
		for i := range int(arg) {
			if i > 0 {
				b.WriteString(", ")
			}
			if off, err = diagItem(b, p, off, indent); err != nil {
				return 0, err
			}
		}
		b.WriteString("]")
	case majMap:
		if arg == 0 {
			b.WriteString("{}")
			break
		}
		b.WriteString("{\n")
		for i := range int(arg) {
			b.WriteString(pad)
			if off, err = diagItem(b, p, off, indent+1); err != nil {
				return 0, err
			}
			b.WriteString(": ")
			if off, err = diagItem(b, p, off, indent+1); err != nil {
				return 0, err
			}
			if i < int(arg)-1 {
				b.WriteString(",")
			}
			b.WriteString("\n")
		}
		b.WriteString(strings.Repeat("  ", indent) + "}")
	case majTag:
		fmt.Fprintf(b, "%d(", arg)
		if off, err = diagItem(b, p, off, indent); err != nil {
			return 0, err
		}
		b.WriteString(")")
	default:
		switch p[off-n] {
		case 0xf4:
			b.WriteString("false")
		case 0xf5:
			b.WriteString("true")
		case 0xf6:
			b.WriteString("null")
		case 0xf9:
			fmt.Fprintf(b, "%s_1", strconv.FormatFloat(float16To64(uint16(arg)), 'g', -1, 64))
		case 0xfa:
			fmt.Fprintf(b, "%s_2", strconv.FormatFloat(float64(math.Float32frombits(uint32(arg))), 'g', -1, 32))
		case 0xfb:
			fmt.Fprintf(b, "%s_3", strconv.FormatFloat(math.Float64frombits(arg), 'g', -1, 64))
		default:
			fmt.Fprintf(b, "simple(%d)", arg)
		}
	}
	return off, nil
}

// sortedKeys is for stable test output.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func mustEncodeRecord(t testing.TB, r *Record) []byte {
	t.Helper()
	p, err := EncodeRecord(r)
	if err != nil {
		t.Fatalf("EncodeRecord(%+v): %v", r, err)
	}
	return p
}
