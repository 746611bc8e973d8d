package wire

import "time"

// Framer returns the framing of one (gateway, stream) for the forwarder:
// stored records (already sealed) → one batch message (AppendBatch).
func Framer(gw, stream string) func(recs [][]byte) ([]byte, error) {
	return func(recs [][]byte) ([]byte, error) {
		n := 64 + len(gw) + len(stream) // map, keys, array head
		for _, r := range recs {
			n += len(r)
		}
		return AppendBatch(make([]byte, 0, n), gw, stream, recs), nil
	}
}

// GapEncoder returns the queue's gap function for a gateway: the encoded
// gap record (GapRecord) that reports records from..to of a stream as
// discarded for reason, stamped by now and marked unsynced while synced
// says the gateway clock is not. The queue gives it its seq like any
// record's. synced nil: always synced.
func GapEncoder(gw string, now func() time.Time, synced func() bool) func(from, to uint64, reason string) ([]byte, error) {
	if now == nil {
		now = time.Now
	}
	return func(from, to uint64, reason string) ([]byte, error) {
		r := GapRecord(gw, from, to, reason, now().UnixMilli())
		if synced != nil && !synced() {
			r.TSrc = TSrcUnsynced
		}
		return EncodeRecord(&r)
	}
}
