package badgerq

// slots holds one uint32 per seq from base (the first seq of the segment
// holding the stream's head) to its last committed seq: the entry's stored
// size and three flags. It replaces a map of
// out-of-order acks, costs 4 bytes per entry of backlog, and lets a quota
// drop know exactly how many bytes each entry frees.
type slots struct {
	base uint64   // seq of v[0]
	v    []uint32 // sizes and flags, seqs base..base+len(v)-1
}

const (
	slotGap     = 1 << 31 // the entry is a gap record
	slotRemoved = 1 << 30 // acked or dropped (its delete is committed or queued)
	slotStart   = 1 << 29 // the first record of a segment (one stored key)
	slotSize    = slotStart - 1

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

// segOf returns the first and last seq of the segment holding seq;
// false when seq is not within s. Segments start at a slotStart; base is
// always one.
func (s *slots) segOf(seq uint64) (first, last uint64, ok bool) {
	if seq < s.base || seq-s.base >= uint64(len(s.v)) {
		return 0, 0, false
	}
	i := int(seq - s.base)
	j := i
	for j > 0 && s.v[j]&slotStart == 0 {
		j--
	}
	k := i + 1
	for k < len(s.v) && s.v[k]&slotStart == 0 {
		k++
	}
	return s.base + uint64(j), s.base + uint64(k-1), true
}

// allRemoved reports whether every seq from first to last is removed.
func (s *slots) allRemoved(first, last uint64) bool {
	for seq := first; seq <= last; seq++ {
		if s.get(seq)&slotRemoved == 0 {
			return false
		}
	}
	return true
}

// segStart returns the first seq of the segment holding seq, or seq when
// it is not within s.
func (s *slots) segStart(seq uint64) uint64 {
	first, _, ok := s.segOf(seq)
	if !ok {
		return seq
	}
	return first
}
