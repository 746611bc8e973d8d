package wire

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// Record kinds ("kind").
const (
	KindPower      = "power"
	KindWater      = "water"
	KindEnterprise = "enterprise"
	KindGPIO       = "gpio"
	KindTraffic    = "traffic"
	KindRecorder   = "recorder"
	KindKiosk      = "kiosk"
	KindGateway    = "gateway"
	KindGap        = "gap"
	// KindRejected (v1 addition): a field message the gateway acknowledged
	// but could not decode, kept raw with the reason (see RejectedRecord).
	KindRejected = "rejected"
)

// Quality flags ("q"), a bit set; absent or 0 means good. Bits not listed
// here are reserved: a platform ignores the ones it does not know.
const (
	// QInvalidPoint: at least one point of the device's message was invalid
	// and left out of vals; the other points are good.
	QInvalidPoint uint64 = 1 << 0
	// QInvalidFields: fields outside the points (a device id, a counter, a
	// checksum the device computed) were invalid; the points are as read.
	QInvalidFields uint64 = 1 << 1
	// QClockSkew: the device's clock was far from the gateway's. ts keeps
	// the device's time and vals carries "clock_offset_ms" (int: device
	// clock minus gateway clock, milliseconds).
	QClockSkew uint64 = 1 << 2
)

// PointClockOffset is the point a record flagged QClockSkew carries.
const PointClockOffset = "clock_offset_ms"

// MarkClockSkew flags r as QClockSkew and records the offset (device clock
// minus gateway clock, ms) as vals["clock_offset_ms"]; r.TS keeps the
// device's time. Decoders do not require the point (q bits are hints), but
// the gateway always sets both through this function.
func MarkClockSkew(r *Record, offsetMS int64) {
	if r.Vals == nil {
		r.Vals = map[string]Value{}
	}
	r.Q |= QClockSkew
	r.Vals[PointClockOffset] = Int(offsetMS)
}

// Sources of a record's timestamp ("tsrc").
const (
	TSrcDevice   = "device"   // the device's own clock
	TSrcGateway  = "gateway"  // the gateway's clock, synced
	TSrcUnsynced = "unsynced" // the gateway's clock, not yet synced
)

// HashSize is the length of prev and hash on the evidence stream.
const HashSize = 32

// MaxSeq is the highest seq a record may carry: 2^63-1, the most a gap
// record's int points can cover and a signed 64-bit column can hold.
const MaxSeq = math.MaxInt64

// GapReasonRestored is the reason of the gap records with which a gateway
// restored from a backup skips the seqs the platform may already hold: the
// only gap record allowed on alarms, which are never discarded.
const GapReasonRestored = "restored"

// Record is one record of a stream (contract "A record"). Grid, Q, Prev,
// Hash, Sig and Alg are omitted from the encoding when empty.
type Record struct {
	Seq  uint64           `cbor:"seq"`
	Dev  string           `cbor:"dev"`
	Kind string           `cbor:"kind"`
	TS   int64            `cbor:"ts"`   // ms since the Unix epoch, UTC
	TSrc string           `cbor:"tsrc"` // device | gateway | unsynced
	Grid string           `cbor:"grid,omitempty"`
	Vals map[string]Value `cbor:"vals"`
	Q    uint64           `cbor:"q,omitempty"`
	Prev []byte           `cbor:"prev,omitempty"` // evidence only
	Hash []byte           `cbor:"hash,omitempty"` // evidence only
	Sig  []byte           `cbor:"sig,omitempty"`  // evidence only: signature over Hash
	Alg  string           `cbor:"alg,omitempty"`  // evidence only: Sig's algorithm, AlgEd25519
}

// Batch is one MQTT message on a record stream.
type Batch struct {
	V      uint64   `cbor:"v"`
	GW     string   `cbor:"gw"`
	Stream string   `cbor:"stream"`
	Recs   []Record `cbor:"recs"`
}

// GapRecord returns the record that reports records from..to (inclusive)
// of a stream as discarded on purpose (contract "No silent loss"): kind
// "gap", dev = the gateway id, vals {from, to, reason}, TSrc "gateway"
// (set TSrcUnsynced yourself while the clock is not synced). It goes on
// the stream whose records were dropped; its Seq is assigned by the queue
// like any other record's.
func GapRecord(gw string, from, to uint64, reason string, ts int64) Record {
	return Record{
		Dev:  gw,
		Kind: KindGap,
		TS:   ts,
		TSrc: TSrcGateway,
		Vals: map[string]Value{
			"from":   Int(int64(from)),
			"to":     Int(int64(to)),
			"reason": Text(reason),
		},
	}
}

// RejectedRecord returns the record that keeps a field message the gateway
// acknowledged but could not decode (kind "rejected"): dev is the device
// the message came from, topic the field topic it arrived on, event the
// event it claimed to be ("" when unknown), reason why it was rejected, raw
// the payload as received. vals: {reason, topic, event, size, raw_b64}
// (raw_b64 is standard base64 with padding). TSrc is "gateway" (set
// TSrcUnsynced yourself while the clock is not synced). It goes on the
// stream the message was meant for; on evidence it is chained like any
// other record.
func RejectedRecord(dev, topic, event, reason string, raw []byte, ts int64) Record {
	return Record{
		Dev:  dev,
		Kind: KindRejected,
		TS:   ts,
		TSrc: TSrcGateway,
		Vals: map[string]Value{
			"reason":  Text(reason),
			"topic":   Text(topic),
			"event":   Text(event),
			"size":    Int(int64(len(raw))),
			"raw_b64": Text(base64.StdEncoding.EncodeToString(raw)),
		},
	}
}

// GapRange returns the range a gap record covers.
func GapRange(r *Record) (from, to uint64, ok bool) {
	if r.Kind != KindGap {
		return 0, 0, false
	}
	f, ok1 := r.Vals["from"].AsInt()
	t, ok2 := r.Vals["to"].AsInt()
	if !ok1 || !ok2 || f < 1 || t < f {
		return 0, 0, false
	}
	return uint64(f), uint64(t), true
}

func isRecordKind(k string) bool {
	switch k {
	case KindPower, KindWater, KindEnterprise, KindGPIO, KindTraffic,
		KindRecorder, KindKiosk, KindGateway, KindGap, KindRejected:
		return true
	}
	return false
}

func isTSrc(s string) bool {
	return s == TSrcDevice || s == TSrcGateway || s == TSrcUnsynced
}

// validText checks a required (non-empty) text field.
func validText(path, s string) error {
	if msg := textProblem(s); msg != "" {
		return schemaErr(path, msg)
	}
	return nil
}

// textProblem explains why s is not a valid required text, or returns "".
func textProblem(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case !utf8.ValidString(s):
		return "not valid UTF-8"
	}
	return ""
}

// checkRecord validates what can be checked on a record alone. Seq 0 is
// allowed: EncodeRecord runs before the queue assigns the seq.
// appendRecord runs the same three steps, checking each point as it
// encodes it, so its errors are the same.
func checkRecord(r *Record) error {
	if err := checkRecordFields(r); err != nil {
		return err
	}
	if err := checkVals("vals", r.Vals); err != nil {
		return err
	}
	return checkRecordChain(r)
}

// checkRecordFields checks dev, kind, tsrc and grid.
func checkRecordFields(r *Record) error {
	if err := validText("dev", r.Dev); err != nil {
		return err
	}
	if !isRecordKind(r.Kind) {
		return schemaErr("kind", fmt.Sprintf("unknown kind %q", r.Kind))
	}
	if !isTSrc(r.TSrc) {
		return schemaErr("tsrc", fmt.Sprintf("unknown tsrc %q (want device, gateway or unsynced)", r.TSrc))
	}
	if !utf8.ValidString(r.Grid) {
		return schemaErr("grid", "not valid UTF-8")
	}
	return nil
}

// checkRecordChain checks prev, hash, sig and alg, then the points of a
// gap, rejected or clock-skewed record; it runs after the points are
// checked one by one.
func checkRecordChain(r *Record) error { return checkRecordChainAs(r, false) }

// checkRecordChainAs is checkRecordChain; with unhashed (the form the hash
// covers) a record may carry alg without sig.
func checkRecordChainAs(r *Record, unhashed bool) error {
	if len(r.Prev) != 0 && len(r.Prev) != HashSize {
		return schemaErr("prev", fmt.Sprintf("%d bytes, want %d", len(r.Prev), HashSize))
	}
	if len(r.Hash) != 0 && len(r.Hash) != HashSize {
		return schemaErr("hash", fmt.Sprintf("%d bytes, want %d", len(r.Hash), HashSize))
	}
	if unhashed && r.Alg != "" {
		if msg := algProblem(r.Alg); msg != "" {
			return schemaErr("alg", msg)
		}
	} else if err := checkSig("sig", "alg", r.Sig, r.Alg); err != nil {
		return err
	}
	switch r.Kind {
	case KindGap:
		return checkGap(r)
	case KindRejected:
		return checkRejected(r)
	}
	return nil
}

// checkRejected checks the points of a rejected record.
func checkRejected(r *Record) error {
	if len(r.Vals) != 5 {
		return schemaErr("vals", "a rejected record has exactly the points reason, topic, event, size and raw_b64")
	}
	for _, k := range []string{"reason", "topic", "event"} {
		if _, ok := r.Vals[k].AsText(); !ok {
			return schemaErr(keyed("vals", k), "rejected: want text")
		}
	}
	raw, ok := r.Vals["raw_b64"].AsText()
	if !ok {
		return schemaErr(keyed("vals", "raw_b64"), "rejected: want text")
	}
	n, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return schemaErr(keyed("vals", "raw_b64"), "rejected: not standard base64: "+err.Error())
	}
	if size, ok := r.Vals["size"].AsInt(); !ok || size != int64(len(n)) {
		return schemaErr(keyed("vals", "size"), fmt.Sprintf("rejected: want the int %d, the length of raw_b64 decoded", len(n)))
	}
	return nil
}

func checkVals(name string, vals map[string]Value) error {
	if err := checkValsLen(name, vals); err != nil {
		return err
	}
	for k, v := range vals {
		if err := checkPoint(name, k, v); err != nil {
			return err
		}
	}
	return nil
}

func checkValsLen(name string, vals map[string]Value) error {
	if len(vals) > maxMapPairs {
		return &Error{Err: ErrTooLarge, Path: name, Msg: fmt.Sprintf("%d points, limit %d", len(vals), maxMapPairs)}
	}
	return nil
}

// checkPoint checks one entry of a map of values.
func checkPoint(name, k string, v Value) error {
	if msg := textProblem(k); msg != "" {
		return schemaErr(keyed(name, k), msg)
	}
	if err := v.check(); err != nil {
		return schemaErr(keyed(name, k), err.Error())
	}
	return nil
}

func checkGap(r *Record) error {
	if len(r.Vals) != 3 {
		return schemaErr("vals", "a gap record has exactly the points from, to and reason")
	}
	from, ok := r.Vals["from"].AsInt()
	if !ok || from < 1 {
		return schemaErr(keyed("vals", "from"), "gap: want int ≥ 1")
	}
	to, ok := r.Vals["to"].AsInt()
	if !ok || to < from {
		return schemaErr(keyed("vals", "to"), "gap: want int ≥ from")
	}
	if _, ok := r.Vals["reason"].AsText(); !ok {
		return schemaErr(keyed("vals", "reason"), "gap: want text")
	}
	return nil
}

// checkBatch validates a batch as Encode and Decode require it.
func checkBatch(b *Batch) error {
	if b.V != Version {
		return &Error{Err: ErrVersion, Path: "v", Msg: fmt.Sprintf("got %d, want %d", b.V, Version)}
	}
	if msg := gatewayIDProblem(b.GW); msg != "" {
		return schemaErr("gw", msg)
	}
	if !IsRecordStream(b.Stream) {
		return schemaErr("stream", fmt.Sprintf("%q is not a record stream (telemetry, events, alarms, evidence)", b.Stream))
	}
	if len(b.Recs) == 0 {
		return schemaErr("recs", "empty; a batch has at least one record")
	}
	if len(b.Recs) > MaxRecords {
		return &Error{Err: ErrTooLarge, Path: "recs", Msg: fmt.Sprintf("%d records, limit %d", len(b.Recs), MaxRecords)}
	}
	var last uint64
	for i := range b.Recs {
		if err := checkInBatch(&b.Recs[i], b, last); err != nil {
			return at("recs", at(idx(i), err))
		}
		last = b.Recs[i].Seq
	}
	return nil
}

func checkInBatch(r *Record, b *Batch, last uint64) error {
	if err := checkRecord(r); err != nil {
		return err
	}
	switch {
	case r.Seq == 0:
		return schemaErr("seq", "0; sequence numbers start at 1")
	case r.Seq <= last:
		return schemaErr("seq", fmt.Sprintf("%d after %d; records must be in strictly ascending seq", r.Seq, last))
	case r.Seq > MaxSeq:
		return schemaErr("seq", fmt.Sprintf("%d above %d (2^63-1), the highest seq", r.Seq, uint64(MaxSeq)))
	}
	if b.Stream == StreamEvidence {
		if len(r.Prev) == 0 {
			return schemaErr("prev", "missing; required on the evidence stream")
		}
		if len(r.Hash) == 0 {
			return schemaErr("hash", "missing; required on the evidence stream")
		}
	} else {
		for _, k := range []struct {
			name string
			set  bool
		}{{"prev", len(r.Prev) != 0}, {"hash", len(r.Hash) != 0}, {"sig", len(r.Sig) != 0}, {"alg", r.Alg != ""}} {
			if k.set {
				return schemaErr(k.name, "only allowed on the evidence stream")
			}
		}
	}
	if r.Kind == KindGap {
		return gapProblem(r, b.GW, b.Stream)
	}
	return nil
}

// gapProblem checks a gap record against its batch and its own seq: gap
// records never appear on evidence (evidence is never discarded), appear
// on alarms only to skip seqs after a restore (alarms are never
// discarded), come from the gateway itself and cover only seqs before
// their own.
func gapProblem(r *Record, gw, stream string) error {
	if stream == StreamEvidence {
		return schemaErr("kind", "gap record on the evidence stream: evidence is never discarded")
	}
	if reason, _ := r.Vals["reason"].AsText(); stream == StreamAlarms && reason != GapReasonRestored {
		return schemaErr(keyed("vals", "reason"), fmt.Sprintf("gap record on the alarms stream with reason %q: alarms are never discarded (only a restore skips seqs, reason %q)", reason, GapReasonRestored))
	}
	if r.Dev != gw {
		return schemaErr("dev", fmt.Sprintf("gap record from %q in a batch of gateway %q", r.Dev, gw))
	}
	if _, to, ok := GapRange(r); ok && r.Seq != 0 && to >= r.Seq {
		return schemaErr(keyed("vals", "to"), fmt.Sprintf("gap record %d covers up to %d: a gap covers only seqs before its own", r.Seq, to))
	}
	return nil
}

// EncodeRecord encodes r in core deterministic CBOR (RFC 8949 §4.2.1).
// r.Seq may still be 0 (see SetSeq and Seal). AppendRecord does the same
// into a caller's buffer.
func EncodeRecord(r *Record) ([]byte, error) {
	return appendRecord(nil, r)
}

// Encode validates b fully (as Decode would) and encodes it in core
// deterministic CBOR. The result equals AppendBatch over the records'
// EncodeRecord outputs.
func Encode(b *Batch) ([]byte, error) {
	if err := checkBatch(b); err != nil {
		return nil, err
	}
	return appendBatch(nil, b)
}

// DecodeRecord decodes one record (as EncodeRecord writes it). It checks
// everything that does not depend on the batch; seq 0 is accepted.
func DecodeRecord(p []byte) (*Record, error) {
	if err := checkInput(p); err != nil {
		return nil, err
	}
	r, err := decodeRecord(p)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Record keys, as bits for duplicate and presence checks.
const (
	bitSeq uint16 = 1 << iota
	bitDev
	bitKind
	bitTS
	bitTSrc
	bitVals
	bitGrid
	bitQ
	bitPrev
	bitHash
	bitSig
	bitAlg
	bitsRequired = bitSeq | bitDev | bitKind | bitTS | bitTSrc | bitVals
)

var recordRequired = []string{"seq", "dev", "kind", "ts", "tsrc", "vals"}

// decodeRecord decodes a well-formed item. It walks the map itself (no
// intermediate map of raw values): records are the hot part of Decode.
func decodeRecord(raw []byte) (*Record, error) {
	r := &Record{}
	if err := decodeRecordInto(r, raw); err != nil {
		return nil, err
	}
	return r, nil
}

func decodeRecordInto(r *Record, raw []byte) error {
	var seen uint16
	err := eachPair(raw, func(k, v []byte) error {
		var bit uint16
		switch string(k) {
		case "seq":
			bit = bitSeq
		case "dev":
			bit = bitDev
		case "kind":
			bit = bitKind
		case "ts":
			bit = bitTS
		case "tsrc":
			bit = bitTSrc
		case "vals":
			bit = bitVals
		case "grid":
			bit = bitGrid
		case "q":
			bit = bitQ
		case "prev":
			bit = bitPrev
		case "hash":
			bit = bitHash
		case "sig":
			bit = bitSig
		case "alg":
			bit = bitAlg
		default:
			return schemaErr(strconv.Quote(string(k)), "unknown key")
		}
		if seen&bit != 0 {
			return schemaErr("", "record: duplicate key "+string(k))
		}
		seen |= bit
		var err error
		switch bit {
		case bitSeq:
			r.Seq, err = wantUint(v)
		case bitDev:
			r.Dev, err = wantText(v)
		case bitKind:
			r.Kind, err = wantText(v)
			r.Kind = intern(r.Kind)
		case bitTS:
			r.TS, err = wantInt(v)
		case bitTSrc:
			r.TSrc, err = wantText(v)
			r.TSrc = intern(r.TSrc)
		case bitVals:
			r.Vals, err = decodeVals("vals", v)
			return err // already names the point
		case bitGrid:
			r.Grid, err = wantText(v)
		case bitQ:
			r.Q, err = wantUint(v)
		case bitPrev:
			r.Prev, err = wantHash(v)
		case bitHash:
			r.Hash, err = wantHash(v)
		case bitSig:
			r.Sig, err = wantBytes(v)
		case bitAlg:
			r.Alg, err = wantText(v)
			if r.Alg == AlgEd25519 {
				r.Alg = AlgEd25519
			}
		}
		if err != nil {
			return schemaErr(string(k), err.Error())
		}
		return nil
	})
	if err != nil {
		var we *Error
		if !errors.As(err, &we) {
			err = schemaErr("", "record: "+err.Error())
		}
		return err
	}
	if seen&bitsRequired != bitsRequired {
		for i, k := range recordRequired {
			if seen&(1<<i) == 0 {
				return schemaErr(k, "missing required key")
			}
		}
	}
	return checkRecord(r)
}

// intern returns the constant for a known kind or tsrc, so decoding does
// not keep one copy per record.
func intern(s string) string {
	switch s {
	case KindPower:
		return KindPower
	case KindWater:
		return KindWater
	case KindEnterprise:
		return KindEnterprise
	case KindGPIO:
		return KindGPIO
	case KindTraffic:
		return KindTraffic
	case KindRecorder:
		return KindRecorder
	case KindKiosk:
		return KindKiosk
	case KindGateway: // also TSrcGateway
		return KindGateway
	case KindGap:
		return KindGap
	case KindRejected:
		return KindRejected
	case TSrcDevice:
		return TSrcDevice
	case TSrcUnsynced:
		return TSrcUnsynced
	}
	return s
}

func wantHash(raw []byte) ([]byte, error) {
	b, err := wantBytes(raw)
	if err != nil {
		return nil, err
	}
	if len(b) != HashSize {
		return nil, fmt.Errorf("%d bytes, want %d", len(b), HashSize)
	}
	return b, nil
}

// decodeVals decodes a map text → Value, rejecting duplicate keys.
func decodeVals(name string, raw []byte) (map[string]Value, error) {
	_, n, _, err := head(raw, 0)
	if err != nil {
		return nil, schemaErr(name, err.Error())
	}
	vals := make(map[string]Value, min(n, 64))
	err = eachPair(raw, func(k, v []byte) error {
		key := string(k)
		if _, dup := vals[key]; dup {
			return schemaErr(name, "duplicate key "+key)
		}
		val, err := decodeValue(v)
		if err != nil {
			return schemaErr(keyed(name, key), err.Error())
		}
		vals[key] = val
		return nil
	})
	if err != nil {
		var we *Error
		if !errors.As(err, &we) {
			err = schemaErr(name, err.Error())
		}
		return nil, err
	}
	return vals, nil
}

// Decode decodes and validates one batch strictly: see the package
// documentation and the contract for every rule. Errors wrap ErrMalformed,
// ErrTooLarge, ErrVersion or ErrSchema and name the record index and key.
func Decode(p []byte) (*Batch, error) {
	m, err := topMap(p, "batch")
	if err != nil {
		return nil, err
	}
	b := &Batch{}
	raw, ok := m["v"]
	if !ok {
		return nil, schemaErr("v", "missing required key")
	}
	if b.V, err = wantUint(raw); err != nil {
		return nil, schemaErr("v", err.Error())
	}
	if b.V != Version {
		return nil, &Error{Err: ErrVersion, Path: "v", Msg: fmt.Sprintf("got %d, want %d", b.V, Version)}
	}
	if err := keys(m, []string{"v", "gw", "stream", "recs"}, nil); err != nil {
		return nil, err
	}
	if b.GW, err = wantText(m["gw"]); err != nil {
		return nil, schemaErr("gw", err.Error())
	}
	if b.Stream, err = wantText(m["stream"]); err != nil {
		return nil, schemaErr("stream", err.Error())
	}
	recs := m["recs"]
	major, n, off, err := head(recs, 0)
	if err != nil || major != majArray {
		return nil, schemaErr("recs", "want array, got "+describe(recs))
	}
	b.Recs = make([]Record, n) // n ≤ MaxRecords: checked by Wellformed
	for i := range b.Recs {
		end, err := skip(recs, off, 1)
		if err != nil {
			return nil, &Error{Err: ErrMalformed, Path: "recs" + idx(i), Msg: err.Error()}
		}
		if err := decodeRecordInto(&b.Recs[i], recs[off:end]); err != nil {
			return nil, at("recs", at(idx(i), err))
		}
		off = end
	}
	if err := checkBatch(b); err != nil {
		return nil, err
	}
	return b, nil
}

// Equal reports whether r and s encode identically (nil and empty Vals,
// Prev and Hash are the same).
func (r *Record) Equal(s *Record) bool {
	if r.Seq != s.Seq || r.Dev != s.Dev || r.Kind != s.Kind || r.TS != s.TS ||
		r.TSrc != s.TSrc || r.Grid != s.Grid || r.Q != s.Q ||
		string(r.Prev) != string(s.Prev) || string(r.Hash) != string(s.Hash) ||
		string(r.Sig) != string(s.Sig) || r.Alg != s.Alg ||
		len(r.Vals) != len(s.Vals) {
		return false
	}
	for k, v := range r.Vals {
		w, ok := s.Vals[k]
		if !ok || !v.Equal(w) {
			return false
		}
	}
	return true
}

// Equal reports whether b and c encode identically.
func (b *Batch) Equal(c *Batch) bool {
	if b.V != c.V || b.GW != c.GW || b.Stream != c.Stream || len(b.Recs) != len(c.Recs) {
		return false
	}
	for i := range b.Recs {
		if !b.Recs[i].Equal(&c.Recs[i]) {
			return false
		}
	}
	return true
}

var (
	_ cbor.Marshaler   = Value{}
	_ cbor.Unmarshaler = (*Value)(nil)
)
