package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/identity"
	"github.com/townlink/townlink/uplink/badgerq"
	"github.com/townlink/townlink/uplink/wire"
)

// RestoreOptions say what the platform may already have received, since
// a backup is older than what the gateway sent after it. Restoring the
// store as it was would make the gateway assign those seqs again to new
// records — the platform would see the same seq with other contents (a
// conflict), and on evidence a forked chain. So a restore moves every
// stream past what the platform may hold (see Restore).
type RestoreOptions struct {
	// Seen is, per stream, the highest seq the platform may have received:
	// from its audit, or the last_seq of the gateway's last status on the
	// county broker. Streams not named count as 0.
	Seen map[string]uint64
	// EvidenceSeq and EvidenceHash name the last evidence record the
	// platform holds (its seq and hash, e.g. the evidence_head of the last
	// status). Needed when the platform has evidence past the backup's.
	EvidenceSeq  uint64
	EvidenceHash []byte
	// Margin is how many seqs past the highest known each gap-able stream
	// skips, for records sent after the Seen figures were taken. 0 means
	// DefaultRestoreMargin.
	Margin uint64
	// Replace moves an existing store aside (to queue.replaced-<time>)
	// instead of refusing; its positions count as seen too. An identity
	// key different from the backup's is never replaced: that would make
	// this gateway another one.
	Replace bool
}

// DefaultRestoreMargin: seqs skipped past the highest known on
// telemetry, events and alarms — a day of a busy township's telemetry.
const DefaultRestoreMargin = 100000

// StreamRestore says what Restore did to one stream.
type StreamRestore struct {
	Backup uint64 // the stream's last seq in the backup
	Known  uint64 // the highest seq the platform may hold (Seen, the replaced store, EvidenceSeq)
	Next   uint64 // the seq the next record gets
	// GapFrom..GapTo is the range a gap record (reason "restored", at seq
	// GapTo+1) reports as lost; zero when none was written (evidence).
	GapFrom, GapTo uint64
}

// gapStreams are the streams a restore may skip with a gap record; evidence
// takes none (contract section 6) and continues the platform's chain.
var gapStreams = []string{wire.StreamTelemetry, wire.StreamEvents, wire.StreamAlarms}

// Restore restores a backup (Backup, BackupStopped) into the data
// directory of cfg while the gateway is stopped, so that the platform's
// audit accepts what the gateway sends next (no seq reuse, no chain fork):
//
//   - telemetry, events, alarms: each skips to max(backup, Known) + Margin
//     and stores a gap record (reason "restored") covering backup+1 up to
//     there, so every seq the gateway may have sent after the backup is
//     reported lost rather than reused. Records the platform did receive
//     in that range stay valid there: a gap record covering received seqs
//     hides nothing.
//   - evidence never takes a gap record: the chain continues from the
//     platform's last evidence record (EvidenceSeq, EvidenceHash) when it
//     is past the backup's; Restore refuses when the platform may hold
//     evidence past the backup and that record is not given, and when the
//     given head contradicts the backup (same seq, other hash).
//
// The backlog in the backup (records not yet acknowledged then) is sent
// again: the platform counts identical copies as duplicates.
func Restore(cfg *config.Config, r io.Reader, o RestoreOptions) (map[string]StreamRestore, error) {
	if o.Margin == 0 {
		o.Margin = DefaultRestoreMargin
	}
	b, err := readBackup(r)
	if err != nil {
		return nil, err
	}
	defer b.close()
	if b.m.Gateway != cfg.Gateway.ID {
		return nil, fmt.Errorf("%w: the backup is of gateway %s, the config is of %s", ErrRestore, b.m.Gateway, cfg.Gateway.ID)
	}
	known := maps(o.Seen)
	if err := restoreIdentity(cfg, b.key, o.Replace); err != nil {
		return nil, err
	}
	dir := storeDir(cfg)
	if dirExists(dir) {
		if !o.Replace {
			return nil, fmt.Errorf("%w: %s holds a store; stop the gateway and give --replace to move it aside (its positions count as seen)", ErrRestore, dir)
		}
		if err := moveAside(cfg, dir, known); err != nil {
			return nil, err
		}
	}
	tmp := dir + ".restoring"
	if err := os.RemoveAll(tmp); err != nil {
		return nil, err
	}
	if _, err := b.store.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if err := badgerq.Restore(storeOptions(cfg, tmp, nil), b.store); err != nil {
		return nil, err
	}
	db, err := badgerq.Open(storeOptions(cfg, tmp, nil))
	if err != nil {
		return nil, err
	}
	heads, err := db.Heads()
	db.Close()
	if err != nil {
		return nil, err
	}
	key, err := identity.Load(identity.Dir(cfg.Gateway.DataDir))
	if err != nil {
		return nil, err
	}
	moves, report, err := planRestore(cfg.Gateway.ID, heads, known, o, key)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	if _, err := badgerq.MoveStreams(storeOptions(cfg, tmp, nil), moves); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("gateway: restore: %w", err)
	}
	if err := restoreCounters(cfg, b.counters); err != nil {
		return nil, err
	}
	return report, nil
}

// restoreCounters writes the backup's pulse counters where the data
// directory has none. A counter file already there is newer than the
// backup (counts only grow) and is kept.
func restoreCounters(cfg *config.Config, counters map[string][]byte) error {
	if len(counters) == 0 {
		return nil
	}
	dir := filepath.Join(cfg.Gateway.DataDir, countersDir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("gateway: restore: counters: %w", err)
	}
	for name, data := range counters {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("gateway: restore: counters: %w", err)
		}
		_, err = f.Write(data)
		if err := errors.Join(err, f.Sync(), f.Close()); err != nil {
			return fmt.Errorf("gateway: restore: counters: %w", err)
		}
	}
	return nil
}

func maps(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// restoreIdentity writes the backup's key where the gateway has none, and
// refuses a different one.
func restoreIdentity(cfg *config.Config, key []byte, replace bool) error {
	dir := identity.Dir(cfg.Gateway.DataDir)
	path := filepath.Join(dir, identity.KeyFile)
	cur, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(cur, key):
		return nil
	case err == nil:
		return fmt.Errorf("%w: %s holds another identity key than the backup's; this data directory belongs to another gateway (move it away by hand if you mean to replace it)", ErrRestore, path)
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("gateway: restore: identity: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("gateway: restore: identity: %w", err)
	}
	if err := os.WriteFile(path, key, 0o600); err != nil {
		return fmt.Errorf("gateway: restore: identity: %w", err)
	}
	if _, err := identity.Load(dir); err != nil {
		os.Remove(path)
		return fmt.Errorf("%w: identity key: %w", ErrBackup, err)
	}
	return nil
}

// moveAside renames the current store away after taking its positions
// into known.
func moveAside(cfg *config.Config, dir string, known map[string]uint64) error {
	db, err := badgerq.Open(storeOptions(cfg, dir, nil))
	if err != nil {
		return fmt.Errorf("%w: the store in %s does not open (%w); is the gateway still running? If it is damaged, move it away by hand and give the platform's figures (--seen, --evidence)", ErrRestore, dir, err)
	}
	heads, err := db.Heads()
	db.Close()
	if err != nil {
		return err
	}
	for name, h := range heads {
		known[name] = max(known[name], h.Last)
	}
	aside := fmt.Sprintf("%s.replaced-%s", dir, time.Now().UTC().Format("20060102T150405Z"))
	if err := os.Rename(dir, aside); err != nil {
		return fmt.Errorf("gateway: restore: %w", err)
	}
	return nil
}

// planRestore decides every stream's move (see Restore).
func planRestore(gw string, heads map[string]badgerq.Head, known map[string]uint64, o RestoreOptions, key wire.Signer) (map[string]badgerq.Move, map[string]StreamRestore, error) {
	moves := make(map[string]badgerq.Move)
	report := make(map[string]StreamRestore)
	// Evidence: continue the platform's chain, never skip.
	ev := heads[wire.StreamEvidence]
	evKnown := max(known[wire.StreamEvidence], o.EvidenceSeq)
	rep := StreamRestore{Backup: ev.Last, Known: evKnown, Next: ev.Last + 1}
	switch {
	case o.EvidenceSeq > 0 && len(o.EvidenceHash) != wire.HashSize:
		return nil, nil, fmt.Errorf("%w: the evidence hash is %d bytes, want %d", ErrRestore, len(o.EvidenceHash), wire.HashSize)
	case o.EvidenceSeq > 0 && known[wire.StreamEvidence] > o.EvidenceSeq:
		return nil, nil, fmt.Errorf("%w: evidence seq %d may have reached the platform, past the evidence head given (seq %d): give the platform's last evidence record", ErrRestore, known[wire.StreamEvidence], o.EvidenceSeq)
	case o.EvidenceSeq > ev.Last:
		moves[wire.StreamEvidence] = badgerq.Move{Last: o.EvidenceSeq, State: o.EvidenceHash}
		rep.Next = o.EvidenceSeq + 1
	case o.EvidenceSeq > 0 && o.EvidenceSeq == ev.Last && !bytes.Equal(o.EvidenceHash, ev.State):
		return nil, nil, fmt.Errorf("%w: the platform's evidence record %d has hash %x, the backup's %x: the chains already differ", ErrRestore, o.EvidenceSeq, o.EvidenceHash, ev.State)
	case o.EvidenceSeq == 0 && evKnown > ev.Last:
		return nil, nil, fmt.Errorf("%w: the platform may hold evidence records %d..%d that the backup lacks; continuing the chain from the backup would fork it: give the platform's last evidence record (--evidence SEQ:HASH, the status's evidence_head)", ErrRestore, ev.Last+1, evKnown)
	}
	report[wire.StreamEvidence] = rep

	for _, name := range gapStreams {
		h := heads[name]
		target := max(h.Last, known[name]) + o.Margin
		gap := wire.GapRecord(gw, h.Last+1, target, wire.GapReasonRestored, time.Now().UnixMilli())
		payload, err := wire.EncodeRecord(&gap)
		if err != nil {
			return nil, nil, err
		}
		stored, state, err := wire.NewSealer(name, key).Seal(target+1, payload, h.State)
		if err != nil {
			return nil, nil, err
		}
		moves[name] = badgerq.Move{Last: target + 1, State: state, Entry: stored}
		report[name] = StreamRestore{Backup: h.Last, Known: known[name], Next: target + 2, GapFrom: h.Last + 1, GapTo: target}
	}
	for name := range heads {
		if _, ok := report[name]; !ok && !slices.Contains(gapStreams, name) {
			report[name] = StreamRestore{Backup: heads[name].Last, Known: known[name], Next: heads[name].Last + 1}
		}
	}
	return moves, report, nil
}
