// Package badgerq is the gateway's durable FIFO: one uplink.Queue per
// stream, stored in one Badger v4 database opened with SyncWrites.
//
// # Group commit
//
// Badger syncs once per transaction and never shares a sync between
// concurrent writers, so the queue batches for its callers: every Append,
// from any goroutine and any stream, is handed to one committer goroutine
// owned by the DB. It takes everything that is waiting (up to
// Options.MaxBatch entries and Badger's transaction size limit), assigns
// sequence numbers, runs the stream's Seal, writes the entries, the ack
// deletes waiting (up to MaxBatch more) and each touched stream's meta key
// in one transaction, commits (one fsync) and then wakes every caller of
// that batch. A failed commit fails every caller in it
// and advances no counter; later appends go on normally.
//
// # Keys and segments
//
//	"e/" + stream + "/" + seq (8 bytes BE)                   → one record (data or gap)
//	"e/" + stream + "/" + first (8 bytes BE) + n (2 bytes BE) → a segment of n records
//	"a/" + stream + "/" + last (8 bytes BE)                   → ack mark of the segment ending at last
//	"m/" + stream                                              → meta: version 1, last seq (8 bytes BE), seal state
//
// The data records one transaction appends to a stream are stored as one
// value, a segment (up to 128 records and 64 KiB; see encodeSeg), keyed by
// its first seq and record count: one Badger write per segment rather than
// per record. A segment of one record and every gap record are stored as
// the record itself under the 8-byte key, which is also how every record
// was stored before segments: a store written then opens as is.
//
// The meta key is written in the same transaction as the entries, so the
// last assigned seq survives restarts even after every entry was acked.
//
// # Reading and acknowledging
//
// Each stream keeps its head (lowest unacked seq), last committed seq and,
// for every seq from the head's segment to last, the entry's stored size,
// whether it starts a segment and whether it was acked (4 bytes per entry
// of backlog) in memory. Peek seeks straight to the segment holding
// max(after+1, head), so draining never walks over the tombstones of
// deleted entries. Ack updates memory at once; a segment's key is deleted
// once all its records are acked or dropped, and until then its ack mark
// (16 bytes at most) says which of them are, so a reopen does not deliver
// them again. The committer writes these deletes and marks in its next
// transaction, shared with any appends. Ack therefore does not wait for an
// fsync: after a crash (not after Close, which flushes them) a recently
// acked entry can come back, which the at-least-once contract allows. The
// quotas count acked bytes as stored until a transaction takes their
// deletes, so no Append takes room that a crash could give back.
//
// A background goroutine runs value-log GC (RunValueLogGC(0.5) until
// ErrNoRewrite) every Options.GCInterval. Close stops both goroutines, waits
// for them, flushes queued work and closes Badger.
//
// # Quotas and gap records
//
// StreamOptions.Quota caps one stream's stored bytes (the records' bytes;
// segment headers and ack marks are not counted), Options.Quota all
// streams together, and Options.DropFreeBytes puts the queue under disk
// pressure when free space runs low. An Append that would go over makes
// room first, in its own transaction:
//
//   - over its stream's quota: it discards that stream's oldest records, if
//     the stream is droppable, else fails with ErrQuota;
//   - over the database quota: it discards the oldest records of the
//     droppable streams in Options.DropOrder (telemetry, then events), all
//     of the first before any of the second, else fails with ErrQuota;
//   - under disk pressure: it discards as many bytes as it adds, in the
//     same order, best effort (below MinFreeBytes every Append fails with
//     ErrDiskFull anyway).
//
// A stream is droppable only if it is in DropOrder and was opened with a
// StreamOptions.Gap function: each discarded range is reported by a gap
// record {from, to, reason} appended to the same stream, in the same
// transaction as the deletes, so a crash never leaves a discard without its
// report. Gap records take ordinary seqs and are flagged in Badger's
// per-key user meta, so a reopened queue knows them. A refused Append
// stores nothing (and drops nothing).
//
// A discard deletes the segments it empties; one whose front it takes is
// rewritten as its remaining records under the key of the first of them
// (its ack mark, keyed by the last seq, stays valid), so a reopen never
// brings discarded records back.
//
// Discards take records in seq order from the head, including records a
// Peek has handed out but nobody acked (the forwarder's later Ack of them
// is a no-op). A gap record is never discarded as data. While no Peek has
// handed out the newest gap record, the next contiguous discard grows it
// in place (same seq, rewritten: only on streams whose Seal keeps no
// state) instead of adding another; when the walk reaches that gap record
// itself it is deleted and the new record covers its range too. Peek and
// the committer synchronise on a per-stream lock so a gap record is never
// rewritten after being handed out: every discarded seq is reported by
// exactly one gap record. A gap record that was handed out is kept, which
// may split reports into several records. An Ack racing with a discard can
// leave a seq both delivered and reported discarded, never neither.
//
// Stats.Dropped and DB.Dropped count discarded records since Open (not
// persisted; gap records themselves are not counted).
//
// # Memory
//
// Badger's DefaultOptions are sized for servers (64 MB memtables × 5, a
// 256 MB block cache, 1 GB value-log files mapped twice). LowMemory, the
// default profile here, uses small memtables and tables, no block cache
// (no compression, so reads go straight to the mmap), and 16 MB value-log
// files. See Profile.
//
// # Disk full
//
// Badger writes its memtable WAL, value log and new SSTables through sparse
// mmaps. When the filesystem runs out of space the kernel answers a write to
// such a page with SIGBUS, which kills the process instead of returning an
// error (seen here on a full tmpfs, inside a compaction's table build). The
// committer therefore checks free space (statfs) before each transaction and
// refuses appends with ErrDiskFull while less than Options.MinFreeBytes is
// free; acks still go through so the queue can drain.
package badgerq
