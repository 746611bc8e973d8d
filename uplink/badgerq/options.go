package badgerq

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/townlink/townlink/uplink/wire"
)

// Options configures Open. Zero values take the defaults shown.
type Options struct {
	Dir    string       // database directory (required)
	Logger *slog.Logger // nil discards

	// Profile sizes Badger. The zero Profile means LowMemory(); a partly
	// filled one takes LowMemory's value for each zero field.
	Profile Profile

	// MaxBatch is the most appended entries the committer puts in one
	// transaction, and apart from them the most ack deletes riding along,
	// as long as Badger's size limit allows. A single Append larger than
	// MaxBatch still commits, alone. Default 1000.
	MaxBatch int

	// GCInterval is how often value-log GC runs. Default 1 minute.
	GCInterval time.Duration

	// MinFreeBytes: appends fail with ErrDiskFull while the filesystem holding
	// Dir has less free space than this (see the package doc on SIGBUS),
	// and then until an eighth more than this is free again (no flapping).
	// Default: 4×MemTableSize + 2×ValueLogFileSize + 8×BaseTableSize.
	// Negative disables the check.
	MinFreeBytes int64

	// Quota caps the stored bytes of all streams together (0: no cap). An
	// Append that would exceed it first discards the oldest records of the
	// streams in DropOrder (see the package doc, "Quotas and gap records");
	// when nothing droppable is left it fails with ErrQuota.
	Quota int64

	// DropOrder lists the streams whose oldest records may be discarded to
	// make room, lowest priority first: all droppable records of the first
	// go before any of the second. nil means DefaultDropOrder (telemetry,
	// then events); an empty non-nil slice means no stream is ever dropped.
	// A stream not listed here (alarms, evidence) is never dropped; a listed
	// stream is dropped only once opened with a StreamOptions.Gap function,
	// since every discarded range must be reported by a gap record.
	DropOrder []string

	// DropFreeBytes: while the filesystem holding Dir has less free space
	// than this (but at least MinFreeBytes), every Append discards as many
	// bytes of the oldest droppable records as it adds, reason "disk_full"
	// (best effort: without droppable records it is still stored). Deleted
	// records free disk space only once Badger compacts, so this starts
	// well before the hard MinFreeBytes limit, below which every Append
	// fails with ErrDiskFull. Default 2×MinFreeBytes; negative disables
	// disk-pressure drops.
	DropFreeBytes int64
}

// DefaultDropOrder is the contract's discard order: telemetry first, then
// events; alarms and evidence are never discarded.
func DefaultDropOrder() []string { return []string{wire.StreamTelemetry, wire.StreamEvents} }

// MinQuota is the smallest non-zero quota: room for a few gap records.
const MinQuota = 4 << 10

// Profile is the part of Badger's options worth tuning on a gateway.
type Profile struct {
	MemTableSize            int64 // one memtable (and its mmapped WAL file)
	NumMemtables            int   // memtables held before writes stall
	BaseTableSize           int64 // SSTable size at L1 (L0 tables are memtable-sized)
	BaseLevelSize           int64
	NumLevelZeroTables      int
	NumLevelZeroTablesStall int
	NumCompactors           int   // at least 2
	ValueThreshold          int64 // values at least this long go to the value log
	ValueLogFileSize        int64 // each value-log file is mapped at twice this size
	BlockCacheSize          int64 // needed only with compression
	IndexCacheSize          int64 // 0 keeps every table index in memory
	Compress                bool  // Snappy; needs a block cache to read fast
}

// LowMemory is the default profile. Measured here (TOWNLINK_MEM=1, 1M
// entries of 200 bytes): ~100 MB anonymous memory while filling (mostly
// table builders during flushes and compactions), ~7 MB holding the
// backlog after a reopen, against ~190 MB and ~250 MB with Badger's
// defaults; no file is preallocated beyond 2×16 MB of value log. It does not
// compress (more disk, no block cache); set Compress and a BlockCacheSize
// to trade memory for flash.
func LowMemory() Profile {
	return Profile{
		MemTableSize:            4 << 20,
		NumMemtables:            2,
		BaseTableSize:           1 << 20,
		BaseLevelSize:           4 << 20,
		NumLevelZeroTables:      2,
		NumLevelZeroTablesStall: 8,
		NumCompactors:           2,
		ValueThreshold:          1 << 10,
		ValueLogFileSize:        16 << 20,
		BlockCacheSize:          0,
		IndexCacheSize:          0,
		Compress:                false,
	}
}

// BadgerDefault mirrors badger.DefaultOptions, for comparison.
func BadgerDefault() Profile {
	d := badger.DefaultOptions("")
	return Profile{
		MemTableSize:            d.MemTableSize,
		NumMemtables:            d.NumMemtables,
		BaseTableSize:           d.BaseTableSize,
		BaseLevelSize:           d.BaseLevelSize,
		NumLevelZeroTables:      d.NumLevelZeroTables,
		NumLevelZeroTablesStall: d.NumLevelZeroTablesStall,
		NumCompactors:           d.NumCompactors,
		ValueThreshold:          d.ValueThreshold,
		ValueLogFileSize:        d.ValueLogFileSize,
		BlockCacheSize:          d.BlockCacheSize,
		IndexCacheSize:          d.IndexCacheSize,
		Compress:                d.Compression != options.None,
	}
}

func (p Profile) withDefaults() Profile {
	d := LowMemory()
	if p == (Profile{}) {
		return d
	}
	if p.MemTableSize <= 0 {
		p.MemTableSize = d.MemTableSize
	}
	if p.NumMemtables <= 0 {
		p.NumMemtables = d.NumMemtables
	}
	if p.BaseTableSize <= 0 {
		p.BaseTableSize = d.BaseTableSize
	}
	if p.BaseLevelSize <= 0 {
		p.BaseLevelSize = d.BaseLevelSize
	}
	if p.NumLevelZeroTables <= 0 {
		p.NumLevelZeroTables = d.NumLevelZeroTables
	}
	if p.NumLevelZeroTablesStall <= 0 {
		p.NumLevelZeroTablesStall = d.NumLevelZeroTablesStall
	}
	if p.NumCompactors <= 0 {
		p.NumCompactors = d.NumCompactors
	}
	if p.ValueThreshold <= 0 {
		p.ValueThreshold = d.ValueThreshold
	}
	if p.ValueLogFileSize <= 0 {
		p.ValueLogFileSize = d.ValueLogFileSize
	}
	return p
}

// Validate reports options Badger would refuse or that break the queue.
func (o Options) Validate() error {
	if o.Dir == "" {
		return fmt.Errorf("%w: Dir is empty", ErrOptions)
	}
	if o.MaxBatch < 0 {
		return fmt.Errorf("%w: MaxBatch %d is negative", ErrOptions, o.MaxBatch)
	}
	if o.GCInterval < 0 {
		return fmt.Errorf("%w: GCInterval %v is negative", ErrOptions, o.GCInterval)
	}
	if o.Quota < 0 || (o.Quota > 0 && o.Quota < MinQuota) {
		return fmt.Errorf("%w: Quota %d: want 0 (none) or at least %d bytes", ErrOptions, o.Quota, MinQuota)
	}
	seen := map[string]bool{}
	for _, name := range o.DropOrder {
		if err := validName(name); err != nil {
			return fmt.Errorf("%w: DropOrder: %w", ErrOptions, err)
		}
		if seen[name] {
			return fmt.Errorf("%w: DropOrder lists %q twice", ErrOptions, name)
		}
		seen[name] = true
	}
	if o.MinFreeBytes > 0 && o.DropFreeBytes > 0 && o.DropFreeBytes < o.MinFreeBytes {
		return fmt.Errorf("%w: DropFreeBytes %d is below MinFreeBytes %d", ErrOptions, o.DropFreeBytes, o.MinFreeBytes)
	}
	p := o.Profile.withDefaults()
	if p.NumCompactors < 2 {
		return fmt.Errorf("%w: Profile.NumCompactors %d: Badger needs at least 2", ErrOptions, p.NumCompactors)
	}
	if p.NumLevelZeroTablesStall <= p.NumLevelZeroTables {
		return fmt.Errorf("%w: Profile.NumLevelZeroTablesStall %d must exceed NumLevelZeroTables %d",
			ErrOptions, p.NumLevelZeroTablesStall, p.NumLevelZeroTables)
	}
	if maxBatch := 15 * p.MemTableSize / 100; p.ValueThreshold > maxBatch {
		return fmt.Errorf("%w: Profile.ValueThreshold %d exceeds 15%% of MemTableSize (%d)",
			ErrOptions, p.ValueThreshold, maxBatch)
	}
	if p.ValueLogFileSize < 1<<20 || p.ValueLogFileSize >= 2<<30 {
		return fmt.Errorf("%w: Profile.ValueLogFileSize %d outside [1 MB, 2 GB)", ErrOptions, p.ValueLogFileSize)
	}
	return nil
}

// MaxStore32 bounds the stored bytes (Options.Quota) on 32-bit platforms
// (armv7). Badger maps every table and memtable file into the process's
// address space: measured with GOARCH=386 natively (4 GiB of address
// space; packaging/fill_test.go) a store of 200-to-900-byte records took
// 3.3 GB before mmap failed with ENOMEM and every Append with it. An armv7
// kernel gives a process 3 GiB at most (2 GiB with a 2G/2G split), and
// compaction needs room for the tables it writes before it deletes the old
// ones, so the quota there is 1 GiB: past it the oldest telemetry, then
// events, are discarded with gap records, as with any quota.
const MaxStore32 = 1 << 30

// boundQuota returns the quota for a platform whose int has intSize bits.
func boundQuota(quota int64, intSize int) int64 {
	if intSize == 32 && (quota == 0 || quota > MaxStore32) {
		return MaxStore32
	}
	return quota
}

func (o Options) withDefaults() Options {
	o.Quota = boundQuota(o.Quota, strconv.IntSize)
	o.Profile = o.Profile.withDefaults()
	if o.MaxBatch == 0 {
		o.MaxBatch = 1000
	}
	if o.GCInterval == 0 {
		o.GCInterval = time.Minute
	}
	if o.MinFreeBytes == 0 {
		p := o.Profile
		o.MinFreeBytes = 4*p.MemTableSize + 2*p.ValueLogFileSize + 8*p.BaseTableSize
	}
	if o.DropOrder == nil {
		o.DropOrder = DefaultDropOrder()
	}
	if o.DropFreeBytes == 0 && o.MinFreeBytes > 0 {
		o.DropFreeBytes = 2 * o.MinFreeBytes
	}
	return o
}

// Badger returns the Badger options Open uses for o: defaults filled in,
// SyncWrites on, Badger's logging discarded unless o.Logger is set. For
// measuring plain Badger under the queue's exact configuration (the raw
// benchmarks).
func (o Options) Badger() badger.Options {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return o.withDefaults().badgerOptions(log)
}

// badgerOptions turns the profile into Badger options. SyncWrites is always
// on: Append promises the data is on disk.
func (o Options) badgerOptions(log *slog.Logger) badger.Options {
	p := o.Profile
	bo := badger.DefaultOptions(o.Dir).
		WithSyncWrites(true).
		WithLogger(badgerLogger{log}).
		WithMetricsEnabled(false).
		WithDetectConflicts(false). // one writer: the committer
		WithNumGoroutines(2).
		WithMemTableSize(p.MemTableSize).
		WithNumMemtables(p.NumMemtables).
		WithBaseTableSize(p.BaseTableSize).
		WithBaseLevelSize(p.BaseLevelSize).
		WithNumLevelZeroTables(p.NumLevelZeroTables).
		WithNumLevelZeroTablesStall(p.NumLevelZeroTablesStall).
		WithNumCompactors(p.NumCompactors).
		WithValueThreshold(p.ValueThreshold).
		WithValueLogFileSize(p.ValueLogFileSize).
		WithBlockCacheSize(p.BlockCacheSize).
		WithIndexCacheSize(p.IndexCacheSize)
	if p.Compress {
		bo = bo.WithCompression(options.Snappy)
	} else {
		bo = bo.WithCompression(options.None)
	}
	if strconv.IntSize == 32 {
		bo = thirtyTwoBit(bo)
	}
	return bo
}

// thirtyTwoBit works around a bug that corrupts every Badger store on a
// 32-bit platform (armv7, 386) at its first compaction: ristretto's
// z.Allocator (v2.2.0), which Badger's table builder writes tables into,
// moves to its next buffer with uint64((bufIdx+1)<<32) — an int shift that
// is 0 where int has 32 bits — so a table that outgrows the allocator's
// first buffer overwrites its own start, and reading it back panics
// ("slice bounds out of range" in table.(*Table).block; reproduced
// natively with GOARCH=386 and under qemu-arm, see packaging/fill_test.go).
// The builder's first buffer is twice the table size it was asked for, so
// no table may outgrow it: L0 tables (a whole memtable) are as big as
// MemTableSize, so the base table size is raised to it, and every level
// keeps that size (no multiplier), since pooled allocators are reused
// without regard to the size a later table asks for.
func thirtyTwoBit(bo badger.Options) badger.Options {
	bo = bo.WithBaseTableSize(max(bo.BaseTableSize, bo.MemTableSize))
	bo.TableSizeMultiplier = 1
	return bo
}

// badgerLogger sends Badger's log lines to slog. Badger's Info lines are
// routine (compactions, flushes), so they go out at Debug.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.log(slog.LevelError, f, a) }
func (b badgerLogger) Warningf(f string, a ...any) { b.log(slog.LevelWarn, f, a) }
func (b badgerLogger) Infof(f string, a ...any)    { b.log(slog.LevelDebug, f, a) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.log(slog.LevelDebug, f, a) }

func (b badgerLogger) log(level slog.Level, f string, a []any) {
	ctx := context.Background()
	if !b.l.Enabled(ctx, level) {
		return // Badger logs on its write path: do not format for nothing
	}
	b.l.Log(ctx, level, trim(fmt.Sprintf(f, a...)), "src", "badger")
}

func trim(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return s
}
