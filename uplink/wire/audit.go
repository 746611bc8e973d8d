package wire

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
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

// Problem is one thing an Audit found wrong, with the seq it concerns (0
// when no seq is known).
type Problem struct {
	Seq    uint64
	Reason string
}

func (p Problem) String() string {
	if p.Seq == 0 {
		return p.Reason
	}
	return "seq " + uitoa(p.Seq) + ": " + p.Reason
}

// StreamReport is the platform's verdict on one (gateway, stream).
type StreamReport struct {
	GW, Stream string
	Received   uint64   // distinct seqs received (gap records included)
	Duplicates uint64   // further copies identical to the first
	Conflicts  []uint64 // seqs received again with different contents
	Invalid    uint64   // records that could not be encoded (not from Decode)
	MaxSeq     uint64   // highest seq received or covered
	Announced  uint64   // highest last_seq a status announced (AddStatus)
	Covered    []Range  // seqs reported discarded by valid gap records, merged
	Missing    []Range  // seqs in 1..max(MaxSeq, Announced) neither received nor covered
	// Forged lists records and messages that cannot be genuine: gap
	// records on evidence or covering their own or later seqs, messages
	// rejected by the decoder or whose payload contradicts their topic,
	// and evidence heads in statuses that do not match the records.
	Forged []Problem
	// Rollbacks lists statuses that announced a lower last_seq than an
	// earlier status: the gateway's store was rolled back or replaced.
	Rollbacks []Problem
	ChainOK   bool  // evidence only: the chain from seq 1 verifies
	ChainErr  error // evidence only: the first break (a *ChainError)
	// SigChecked (evidence only): the signatures were checked with the
	// gateway's key (TrustKey). Without it ChainOK says only that the
	// records hash together, which anyone can arrange.
	SigChecked bool
}

// OK reports whether nothing is missing, conflicting, forged, rolled back
// or broken. An evidence chain whose signatures were not checked can be
// OK: see SigChecked.
func (s *StreamReport) OK() bool {
	return len(s.Conflicts) == 0 && len(s.Missing) == 0 && s.Invalid == 0 &&
		len(s.Forged) == 0 && len(s.Rollbacks) == 0 &&
		(s.Stream != StreamEvidence || s.ChainOK)
}

// Report is the verdict over everything an Audit has seen, one entry per
// (gateway, stream), sorted.
type Report struct {
	Streams []StreamReport
	// Rejected lists messages that belong to no record stream and could
	// not be accepted: a bad topic, a status that does not decode or
	// contradicts its topic.
	Rejected []string
}

// OK reports whether every stream is OK and no message was rejected.
func (r Report) OK() bool {
	for i := range r.Streams {
		if !r.Streams[i].OK() {
			return false
		}
	}
	return len(r.Rejected) == 0
}

// SigsUnchecked lists the evidence streams whose signatures were not
// checked (no key for their gateway), as gw/evidence.
func (r Report) SigsUnchecked() []string {
	var out []string
	for _, s := range r.Streams {
		if s.Stream == StreamEvidence && !s.SigChecked {
			out = append(out, s.GW+"/"+s.Stream)
		}
	}
	return out
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
		r.Streams[i].write(&b)
	}
	for _, m := range r.Rejected {
		fmt.Fprintf(&b, "REJECTED %s\n", m)
	}
	if len(r.Streams) == 0 && len(r.Rejected) == 0 {
		b.WriteString("no records\n")
	}
	return b.String()
}

func (s *StreamReport) write(b *strings.Builder) {
	fmt.Fprintf(b, "%s/%s: received %d, duplicates %d, max seq %d", s.GW, s.Stream, s.Received, s.Duplicates, s.MaxSeq)
	if s.Announced > s.MaxSeq {
		fmt.Fprintf(b, ", status announced last seq %d (tail cut off, rolled back or not yet delivered)", s.Announced)
	}
	if len(s.Covered) > 0 {
		fmt.Fprintf(b, ", covered by gaps %s (%d)", joinRanges(s.Covered), countRanges(s.Covered))
	}
	if len(s.Missing) > 0 {
		fmt.Fprintf(b, ", MISSING %s (%d)", joinRanges(s.Missing), countRanges(s.Missing))
	}
	if len(s.Conflicts) > 0 {
		fmt.Fprintf(b, ", CONFLICTS at seq %v", s.Conflicts)
	}
	if s.Invalid > 0 {
		fmt.Fprintf(b, ", INVALID records %d", s.Invalid)
	}
	for _, p := range s.Forged {
		fmt.Fprintf(b, ", FORGED %s", p)
	}
	for _, p := range s.Rollbacks {
		fmt.Fprintf(b, ", ROLLBACK %s", p)
	}
	if s.Stream == StreamEvidence {
		switch {
		case !s.ChainOK && s.ChainErr == nil:
			b.WriteString(", no evidence record received")
		case !s.ChainOK:
			fmt.Fprintf(b, ", CHAIN BROKEN: %v", s.ChainErr)
		case s.SigChecked:
			b.WriteString(", chain ok, signatures verified")
		default:
			b.WriteString(", chain ok, signatures NOT CHECKED (no key for this gateway)")
		}
	}
	if s.OK() {
		b.WriteString(": OK\n")
	} else {
		b.WriteString(": FAIL\n")
	}
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

// Audit is the platform's bookkeeping over a captured stream of batches
// and statuses, received in any order and with duplicates: it deduplicates
// on (gateway, stream, seq), detects conflicting copies, accounts for gap
// records, refuses forged ones, verifies the evidence chain (and, with the
// gateway's key, its signatures), and holds what the statuses announce
// against what arrived. It is safe for concurrent use.
type Audit struct {
	mu       sync.Mutex
	streams  map[streamKey]*streamState
	keys     map[string]Verifier
	anyKey   Verifier
	statuses map[string][]*Status // per gateway, in arrival order
	rejected []string
	msgs     int
}

type streamKey struct{ gw, stream string }

type streamState struct {
	digest    map[uint64][32]byte // first copy of each seq
	dups      uint64
	conflicts map[uint64]struct{}
	invalid   uint64
	covered   []Range
	forged    []Problem
	evidence  map[uint64]Record
}

// NewAudit returns an empty Audit.
func NewAudit() *Audit {
	return &Audit{streams: map[streamKey]*streamState{}, keys: map[string]Verifier{}, statuses: map[string][]*Status{}}
}

// TrustKey makes the audit check the evidence signatures and the signed
// evidence heads of gateway gw with v (its registered key). gw "" sets the
// key for every gateway without a key of its own.
func (a *Audit) TrustKey(gw string, v Verifier) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if gw == "" {
		a.anyKey = v
		return
	}
	a.keys[gw] = v
}

func (a *Audit) keyOf(gw string) Verifier {
	if v, ok := a.keys[gw]; ok {
		return v
	}
	return a.anyKey
}

// state returns the state of (gw, stream), creating it. a.mu is held.
func (a *Audit) state(gw, stream string) *streamState {
	k := streamKey{gw, stream}
	st := a.streams[k]
	if st == nil {
		st = &streamState{digest: map[uint64][32]byte{}, conflicts: map[uint64]struct{}{}}
		if stream == StreamEvidence {
			st.evidence = map[uint64]Record{}
		}
		a.streams[k] = st
	}
	return st
}

// Add records every record of b. b should come from DecodeTopic: Add
// trusts b.GW and b.Stream. Gap records that cannot be genuine (on
// evidence, on alarms other than a restore's, or covering their own or
// later seqs) are reported as forged and count neither as received nor as
// covering anything; records with seq 0 or above MaxSeq count as Invalid.
func (a *Audit) Add(b *Batch) {
	if b == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.state(b.GW, b.Stream)
	for i := range b.Recs {
		r := &b.Recs[i]
		enc, err := EncodeRecord(r)
		if err != nil || r.Seq == 0 || r.Seq > MaxSeq {
			st.invalid++
			continue
		}
		if r.Kind == KindGap {
			if err := gapProblem(r, b.GW, b.Stream); err != nil {
				st.forged = append(st.forged, Problem{Seq: r.Seq, Reason: err.Error()})
				continue
			}
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

// AddStatus records what a status announces: per stream the last seq
// committed, and the evidence head. s should come from DecodeStatusTopic.
// Report then holds the records against it: a stream whose announced last
// seq was not received (nor covered) has its tail missing; a status that
// announces a lower last seq than an earlier one (by ts) is a rollback; an
// evidence head that is not the hash of the received record of its seq,
// or (with the gateway's key) whose signature does not verify, is forged.
func (a *Audit) AddStatus(s *Status) {
	if s == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.statuses[s.GW] = append(a.statuses[s.GW], s)
}

// AddMessage audits one MQTT message as it arrived: batches are decoded
// with DecodeTopic and added, statuses with DecodeStatusTopic; cmd,
// cmd-result and ack messages are not audited. A message that does not
// decode, or contradicts its topic, is reported in the verdict (as forged
// on the topic's stream, naming the seqs the payload claims, or in
// Report.Rejected) and its error is returned as well.
func (a *Audit) AddMessage(topic string, payload []byte) error {
	a.mu.Lock()
	a.msgs++
	n := a.msgs
	a.mu.Unlock()
	_, _, gw, stream, err := ParseTopic(topic)
	switch {
	case err != nil:
		a.reject(fmt.Sprintf("message %d on %q: %v", n, topic, err))
		return err
	case stream == StreamStatus:
		s, err := DecodeStatusTopic(topic, payload)
		if err != nil {
			a.reject(fmt.Sprintf("message %d on %s: %v", n, topic, err))
			return err
		}
		a.AddStatus(s)
	case IsRecordStream(stream):
		b, err := DecodeTopic(topic, payload)
		if err != nil {
			p := rejectedBatch(n, payload, err)
			a.mu.Lock()
			st := a.state(gw, stream)
			st.forged = append(st.forged, p)
			a.mu.Unlock()
			return err
		}
		a.Add(b)
	}
	return nil
}

func (a *Audit) reject(msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rejected = append(a.rejected, msg)
}

// Report computes the verdict over everything added so far.
func (a *Audit) Report() Report {
	a.mu.Lock()
	defer a.mu.Unlock()
	ann := a.announcements()
	keys := map[streamKey]bool{}
	for k := range a.streams {
		keys[k] = true
	}
	for k := range ann {
		keys[k] = true
	}
	ks := slices.SortedFunc(maps.Keys(keys), func(x, y streamKey) int {
		return cmp.Or(cmp.Compare(x.gw, y.gw), cmp.Compare(x.stream, y.stream))
	})
	rep := Report{Rejected: slices.Clone(a.rejected)}
	empty := &streamState{}
	for _, k := range ks {
		st := a.streams[k]
		if st == nil {
			st = empty
		}
		s := st.report(k, a.keyOf(k.gw), ann[k])
		rep.Streams = append(rep.Streams, s)
	}
	return rep
}

// announced is what the statuses of one gateway say about one stream.
type announced struct {
	last      uint64
	rollbacks []Problem
	heads     []*Status // statuses announcing an evidence last seq
}

// announcements folds the statuses, per gateway in ts order. a.mu is held.
func (a *Audit) announcements() map[streamKey]*announced {
	out := map[streamKey]*announced{}
	for gw, list := range a.statuses {
		sorted := slices.Clone(list)
		slices.SortStableFunc(sorted, func(x, y *Status) int { return cmp.Compare(x.TS, y.TS) })
		type high struct {
			seq  uint64
			from *Status
		}
		highs := map[string]high{}
		for _, s := range sorted {
			for stream, seq := range s.LastSeq {
				k := streamKey{gw, stream}
				an := out[k]
				if an == nil {
					if seq == 0 {
						continue
					}
					an = &announced{}
					out[k] = an
				}
				h := highs[stream]
				if seq < h.seq && s.TS > h.from.TS {
					an.rollbacks = append(an.rollbacks, Problem{Seq: seq, Reason: fmt.Sprintf(
						"status of ts %d (boot %s) announces last seq %d after the status of ts %d (boot %s) announced %d: the gateway's store was rolled back",
						s.TS, s.Boot, seq, h.from.TS, h.from.Boot, h.seq)})
				}
				if seq > h.seq {
					highs[stream] = high{seq, s}
				}
				an.last = max(an.last, seq)
			}
			if s.LastSeq[StreamEvidence] != 0 {
				if an := out[streamKey{gw, StreamEvidence}]; an != nil {
					an.heads = append(an.heads, s)
				}
			}
		}
	}
	return out
}

func (st *streamState) report(k streamKey, key Verifier, an *announced) StreamReport {
	s := StreamReport{GW: k.gw, Stream: k.stream, Duplicates: st.dups, Invalid: st.invalid}
	seqs := slices.Sorted(maps.Keys(st.digest))
	s.Received = uint64(len(seqs))
	s.Conflicts = slices.Sorted(maps.Keys(st.conflicts))
	s.Covered = mergeRanges(slices.Clone(st.covered))
	s.Forged = slices.Clone(st.forged)
	if len(seqs) > 0 {
		s.MaxSeq = seqs[len(seqs)-1]
	}
	if n := len(s.Covered); n > 0 && s.Covered[n-1].To > s.MaxSeq {
		s.MaxSeq = s.Covered[n-1].To
	}
	if an != nil {
		s.Announced = an.last
		s.Rollbacks = slices.Clone(an.rollbacks)
	}
	// Everything seen: received seqs as runs, plus covered ranges.
	seen := mergeRanges(append(slices.Clone(s.Covered), runs(seqs)...))
	next := uint64(1)
	for _, r := range seen {
		if r.From > next {
			s.Missing = append(s.Missing, Range{next, r.From - 1})
		}
		next = max(next, r.To+1)
	}
	if last := max(s.MaxSeq, s.Announced); next <= last {
		s.Missing = append(s.Missing, Range{next, last})
	}
	if k.stream == StreamEvidence {
		recs := make([]Record, 0, len(seqs))
		for _, q := range seqs {
			recs = append(recs, st.evidence[q])
		}
		s.ChainErr = VerifyChainKey(recs, nil, key)
		s.ChainOK = s.ChainErr == nil && len(recs) > 0
		s.SigChecked = key != nil
		if an != nil {
			s.Forged = append(s.Forged, st.headProblems(an.heads, key)...)
		}
	}
	return s
}

// headProblems holds the evidence heads statuses announced against the
// received records and, with key, checks their signatures.
func (st *streamState) headProblems(heads []*Status, key Verifier) []Problem {
	var out []Problem
	for _, s := range heads {
		seq := s.LastSeq[StreamEvidence]
		if len(s.EvidenceHead) == 0 {
			// With the key, only a signed head vouches for where the
			// chain ends: whoever cut the tail would announce less.
			if key != nil {
				out = append(out, Problem{Seq: seq, Reason: fmt.Sprintf(
					"status of ts %d announces evidence last seq %d without an evidence head: not signed with the gateway's key", s.TS, seq)})
			}
			continue
		}
		if r, ok := st.evidence[seq]; ok && !bytes.Equal(r.Hash, s.EvidenceHead) {
			out = append(out, Problem{Seq: seq, Reason: fmt.Sprintf(
				"status of ts %d announces evidence head %x for seq %d, the record received has hash %x", s.TS, s.EvidenceHead, seq, r.Hash)})
		}
		if key == nil {
			continue
		}
		if err := verifyHead(key, s); err != nil {
			out = append(out, Problem{Seq: seq, Reason: fmt.Sprintf(
				"status of ts %d: evidence head of seq %d %v with the gateway's key", s.TS, seq, err)})
		}
	}
	return out
}

// runs turns sorted distinct seqs into ranges of consecutive seqs.
func runs(seqs []uint64) []Range {
	var out []Range
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		out = append(out, Range{seqs[i], seqs[j]})
		i = j + 1
	}
	return out
}

// rejectedBatch is the problem reported for message n, a batch that did
// not decode: it names the record the error is about (its seq, when the
// error names recs[i] and that record's seq can be read) and every seq
// the payload claims.
func rejectedBatch(n int, payload []byte, err error) Problem {
	seqs := payloadSeqs(payload)
	p := Problem{Reason: fmt.Sprintf("message %d rejected: %v", n, err)}
	if len(seqs) == 0 {
		return p
	}
	var we *Error
	if errors.Is(err, ErrIdentity) {
		p.Seq = seqs[0] // the whole batch is at fault
	} else if errors.As(err, &we) && strings.HasPrefix(we.Path, "recs[") {
		if i, _, ok := strings.Cut(we.Path[len("recs["):], "]"); ok {
			if k, convErr := strconv.Atoi(i); convErr == nil && k < len(seqs) {
				p.Seq = seqs[k]
			}
		}
	}
	sorted := slices.Clone(seqs)
	slices.Sort(sorted)
	p.Reason = fmt.Sprintf("message %d (records %s) rejected: %v", n, joinRanges(runs(slices.Compact(sorted))), err)
	return p
}

// payloadSeqs returns, in payload order, the seqs a batch payload that
// failed to decode claims, as far as they can be read (0 for a record
// whose seq cannot be read).
func payloadSeqs(p []byte) []uint64 {
	if checkInput(p) != nil {
		return nil
	}
	var seqs []uint64
	_ = eachPair(p, func(k, v []byte) error {
		if string(k) != "recs" {
			return nil
		}
		major, n, off, err := head(v, 0)
		if err != nil || major != majArray {
			return nil
		}
		for range n {
			end, err := skip(v, off, 1)
			if err != nil {
				return err
			}
			var seq uint64
			_ = eachPair(v[off:end], func(k, v []byte) error {
				if string(k) == "seq" {
					seq, _ = wantUint(v)
				}
				return nil
			})
			seqs = append(seqs, seq)
			off = end
		}
		return nil
	})
	return seqs
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
		if r.From <= last.To || r.From-1 == last.To {
			last.To = max(last.To, r.To)
			continue
		}
		out = append(out, r)
	}
	return out
}
