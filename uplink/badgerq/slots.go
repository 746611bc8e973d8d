package badgerq

// slots holds one uint32 per seq from base (the stream's head) to its last
// committed seq: the entry's stored size and two flags. It replaces a map of
// out-of-order acks, costs 4 bytes per entry of backlog, and lets a quota
// drop know exactly how many bytes each entry frees.
type slots struct {
	base uint64   // seq of v[0]
	v    []uint32 // sizes and flags, seqs base..base+len(v)-1
}

const (
	slotGap     = 1 << 31 // the entry is a gap record
	slotRemoved = 1 << 30 // acked or dropped (its delete is committed or queued)
	slotSize    = slotRemoved - 1

	// maxEntrySize is the largest storable entry: its size must fit a slot.
	maxEntrySize = slotSize
)

func (s *slots) get(seq uint64) uint32 {
	if seq < s.base || seq-s.base >= uint64(len(s.v)) {
		return slotRemoved
	}
	return s.v[seq-s.base]
}

func (s *slots) set(seq uint64, v uint32) {
	if seq >= s.base && seq-s.base < uint64(len(s.v)) {
		s.v[seq-s.base] = v
	}
}

func (s *slots) push(v uint32) { s.v = append(s.v, v) }

// trim forgets seqs below head.
func (s *slots) trim(head uint64) {
	if head <= s.base {
		return
	}
	k := head - s.base
	if k >= uint64(len(s.v)) {
		s.v = s.v[:0]
	} else {
		s.v = s.v[k:]
	}
	s.base = head
}

func sizeOf(v uint32) int64 { return int64(v & slotSize) }
