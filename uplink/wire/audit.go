package wire

import (
	"cmp"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// Range is an inclusive range of sequence numbers.
type Range struct{ From, To uint64 }

func (r Range) len() uint64 { return r.To - r.From + 1 }

func (r Range) String() string {
	if r.From == r.To {
		return uitoa(r.From)
	}
	return uitoa(r.From) + "-" + uitoa(r.To)
}

// StreamReport is the platform's verdict on one (gateway, stream).
type StreamReport struct {
	GW, Stream string
	Received   uint64   // distinct seqs received (gap records included)
	Duplicates uint64   // further copies identical to the first
	Conflicts  []uint64 // seqs received again with different contents
	Invalid    uint64   // records that could not be encoded (not from Decode)
	MaxSeq     uint64   // highest seq received or covered
	Covered    []Range  // seqs reported discarded by gap records, merged
	Missing    []Range  // seqs in 1..MaxSeq neither received nor covered
	ChainOK    bool     // evidence only: the chain from seq 1 verifies
	ChainErr   error    // evidence only: the first break (a *ChainError)
}

// OK reports whether nothing is missing, conflicting or broken.
func (s *StreamReport) OK() bool {
	return len(s.Conflicts) == 0 && len(s.Missing) == 0 && s.Invalid == 0 &&
		(s.Stream != StreamEvidence || s.ChainOK)
}

// Report is the verdict over everything an Audit has seen, one entry per
// (gateway, stream), sorted.
type Report struct {
	Streams []StreamReport
}

// OK reports whether every stream is OK.
func (r Report) OK() bool {
	for i := range r.Streams {
		if !r.Streams[i].OK() {
			return false
		}
	}
	return true
}

// Stream returns the report for one (gateway, stream), if any.
func (r Report) Stream(gw, stream string) (StreamReport, bool) {
	for _, s := range r.Streams {
		if s.GW == gw && s.Stream == stream {
			return s, true
		}
	}
	return StreamReport{}, false
}

// String is a human summary, one line per stream.
func (r Report) String() string {
	var b strings.Builder
	for i := range r.Streams {
		s := &r.Streams[i]
		fmt.Fprintf(&b, "%s/%s: received %d, duplicates %d, max seq %d", s.GW, s.Stream, s.Received, s.Duplicates, s.MaxSeq)
		if len(s.Covered) > 0 {
			fmt.Fprintf(&b, ", covered by gaps %s (%d)", joinRanges(s.Covered), countRanges(s.Covered))
		}
		if len(s.Missing) > 0 {
			fmt.Fprintf(&b, ", MISSING %s (%d)", joinRanges(s.Missing), countRanges(s.Missing))
		}
		if len(s.Conflicts) > 0 {
			fmt.Fprintf(&b, ", CONFLICTS at seq %v", s.Conflicts)
		}
		if s.Invalid > 0 {
			fmt.Fprintf(&b, ", INVALID records %d", s.Invalid)
		}
		if s.Stream == StreamEvidence {
			if s.ChainOK {
				b.WriteString(", chain ok")
			} else {
				fmt.Fprintf(&b, ", CHAIN BROKEN: %v", s.ChainErr)
			}
		}
		if s.OK() {
			b.WriteString(": OK\n")
		} else {
			b.WriteString(": FAIL\n")
		}
	}
	if len(r.Streams) == 0 {
		b.WriteString("no records\n")
	}
	return b.String()
}

func joinRanges(rs []Range) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

func countRanges(rs []Range) uint64 {
	var n uint64
	for _, r := range rs {
		n += r.len()
	}
	return n
}

// Audit is the platform's bookkeeping over a captured stream of batches,
// received in any order and with duplicates: it deduplicates on (gateway,
// stream, seq), detects conflicting copies, accounts for gap records and
// verifies the evidence chain. It is safe for concurrent use.
type Audit struct {
	mu      sync.Mutex
	streams map[streamKey]*streamState
}

type streamKey struct{ gw, stream string }

type streamState struct {
	digest    map[uint64][32]byte // first copy of each seq
	dups      uint64
	conflicts map[uint64]struct{}
	invalid   uint64
	covered   []Range
	evidence  map[uint64]Record
}

// NewAudit returns an empty Audit.
func NewAudit() *Audit { return &Audit{streams: map[streamKey]*streamState{}} }

// Add records every record of b. b should come from Decode.
func (a *Audit) Add(b *Batch) {
	if b == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	k := streamKey{b.GW, b.Stream}
	st := a.streams[k]
	if st == nil {
		st = &streamState{digest: map[uint64][32]byte{}, conflicts: map[uint64]struct{}{}}
		if b.Stream == StreamEvidence {
			st.evidence = map[uint64]Record{}
		}
		a.streams[k] = st
	}
	for i := range b.Recs {
		r := &b.Recs[i]
		enc, err := EncodeRecord(r)
		if err != nil || r.Seq == 0 {
			st.invalid++
			continue
		}
		d := sha256.Sum256(enc)
		if old, ok := st.digest[r.Seq]; ok {
			if old == d {
				st.dups++
			} else {
				st.conflicts[r.Seq] = struct{}{}
			}
			continue
		}
		st.digest[r.Seq] = d
		if from, to, ok := GapRange(r); ok {
			st.covered = append(st.covered, Range{from, to})
		}
		if st.evidence != nil {
			st.evidence[r.Seq] = *r
		}
	}
}

// Report computes the verdict over everything added so far.
func (a *Audit) Report() Report {
	a.mu.Lock()
	defer a.mu.Unlock()
	ks := slices.SortedFunc(maps.Keys(a.streams), func(x, y streamKey) int {
		return cmp.Or(cmp.Compare(x.gw, y.gw), cmp.Compare(x.stream, y.stream))
	})
	var rep Report
	for _, k := range ks {
		rep.Streams = append(rep.Streams, a.streams[k].report(k))
	}
	return rep
}

func (st *streamState) report(k streamKey) StreamReport {
	s := StreamReport{GW: k.gw, Stream: k.stream, Duplicates: st.dups, Invalid: st.invalid}
	seqs := slices.Sorted(maps.Keys(st.digest))
	s.Received = uint64(len(seqs))
	s.Conflicts = slices.Sorted(maps.Keys(st.conflicts))
	s.Covered = mergeRanges(slices.Clone(st.covered))
	if len(seqs) > 0 {
		s.MaxSeq = seqs[len(seqs)-1]
	}
	if n := len(s.Covered); n > 0 && s.Covered[n-1].To > s.MaxSeq {
		s.MaxSeq = s.Covered[n-1].To
	}
	// Everything seen: received seqs as runs, plus covered ranges.
	seen := slices.Clone(s.Covered)
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		seen = append(seen, Range{seqs[i], seqs[j]})
		i = j + 1
	}
	seen = mergeRanges(seen)
	next := uint64(1)
	for _, r := range seen {
		if r.From > next {
			s.Missing = append(s.Missing, Range{next, r.From - 1})
		}
		next = max(next, r.To+1)
	}
	if k.stream == StreamEvidence {
		recs := make([]Record, 0, len(seqs))
		for _, q := range seqs {
			recs = append(recs, st.evidence[q])
		}
		s.ChainErr = VerifyChain(recs, nil)
		s.ChainOK = s.ChainErr == nil && len(recs) > 0
	}
	return s
}

// mergeRanges sorts and merges overlapping or adjacent ranges.
func mergeRanges(rs []Range) []Range {
	if len(rs) == 0 {
		return nil
	}
	slices.SortFunc(rs, func(x, y Range) int { return cmp.Or(cmp.Compare(x.From, y.From), cmp.Compare(x.To, y.To)) })
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if r.From <= last.To+1 {
			last.To = max(last.To, r.To)
			continue
		}
		out = append(out, r)
	}
	return out
}
