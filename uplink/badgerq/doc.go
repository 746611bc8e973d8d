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
// sequence numbers, runs the stream's Seal, writes the entries and each
// touched stream's meta key in one transaction, commits (one fsync) and then
// wakes every caller of that batch. A failed commit fails every caller in it
// and advances no counter; later appends go on normally.
//
// # Keys
//
//	"e/" + stream + "/" + seq (8 bytes, big endian)  → stored bytes
//	"m/" + stream                                      → meta: version 1, last seq (8 bytes BE), seal state
//
// The meta key is written in the same transaction as the entries, so the
// last assigned seq survives restarts even after every entry was acked.
//
// # Reading and acknowledging
//
// Each stream keeps its head (lowest unacked seq), last committed seq and the
// set of seqs acked out of order in memory. Peek seeks straight to
// max(after+1, head), so draining never walks over the tombstones of
// deleted entries. Ack updates memory at once and queues the deletes; the
// committer writes them in its next transaction, shared with any appends.
// Ack therefore does not wait for an fsync: after a crash (not after Close,
// which flushes them) a recently acked entry can come back, which the
// at-least-once contract allows.
//
// A background goroutine runs value-log GC (RunValueLogGC(0.5) until
// ErrNoRewrite) every Options.GCInterval. Close stops both goroutines, waits
// for them, flushes queued work and closes Badger.
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
