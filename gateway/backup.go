package gateway

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/identity"
	"github.com/townlink/townlink/uplink/badgerq"
)

// A backup is a tar archive of these members:
//
//	townlink-backup.json   manifest: format, gateway id, time, version, each stream's last seq
//	identity/ed25519.key   the gateway's signing key (mode 0600 in the archive)
//	queue.badger           the store, as badgerq.DB.Backup writes it
//	counters/NAME.count    the pulse counters (data_dir/counters), any number
//
// It holds the private key: keep backup files as secret as the key itself.
const (
	backupFormat   = "townlink-backup/1"
	memberManifest = "townlink-backup.json"
	memberKey      = "identity/" + identity.KeyFile
	memberStore    = "queue.badger"
	countersDir    = "counters"
)

// Errors of backup and restore.
var (
	// ErrBackup: the file is not a townlink backup, or is damaged.
	ErrBackup = errors.New("gateway: bad backup file")
	// ErrRestore: a restore that would let the platform see a reused seq
	// or a forked evidence chain, or that would overwrite data; the
	// message says what to give instead.
	ErrRestore = errors.New("gateway: restore refused")
)

type manifest struct {
	Format  string            `json:"format"`
	Gateway string            `json:"gateway"`
	Created time.Time         `json:"created"`
	Version string            `json:"version"`
	Streams map[string]uint64 `json:"streams"` // last seq per stream (informational)
}

func storeDir(cfg *config.Config) string { return filepath.Join(cfg.Gateway.DataDir, "queue") }

func storeOptions(cfg *config.Config, dir string, log *slog.Logger) badgerq.Options {
	o := badgerq.Options{Dir: dir, Logger: log}
	if cfg.Store.Profile == config.ProfileDefault {
		o.Profile = badgerq.BadgerDefault()
	}
	return o
}

// Backup writes a backup of the running gateway's store (a consistent
// snapshot taken while it runs) and identity key to w. The local control
// socket is the way to call it from `townlink backup` while the gateway
// runs.
func (g *Gateway) Backup(w io.Writer) error {
	return writeBackup(w, g.cfg, g.db, g.key.Path())
}

// BackupStopped writes a backup of a stopped gateway's data directory: it
// opens the store itself, which fails while a gateway runs on it (Badger
// locks its directory); then back up through the running gateway.
func BackupStopped(cfg *config.Config, w io.Writer) error {
	dir := storeDir(cfg)
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("%w: no store in %s: %w", ErrBackup, cfg.Gateway.DataDir, err)
	}
	db, err := badgerq.Open(storeOptions(cfg, dir, nil))
	if err != nil {
		return fmt.Errorf("gateway: backup: %w (is the gateway running? stop it, or back up through it)", err)
	}
	defer db.Close()
	return writeBackup(w, cfg, db, filepath.Join(identity.Dir(cfg.Gateway.DataDir), identity.KeyFile))
}

func writeBackup(w io.Writer, cfg *config.Config, db *badgerq.DB, keyPath string) error {
	key, err := os.ReadFile(keyPath)
	if err != nil {
		return fmt.Errorf("gateway: backup: identity: %w", err)
	}
	heads, err := db.Heads()
	if err != nil {
		return err
	}
	m := manifest{Format: backupFormat, Gateway: cfg.Gateway.ID, Created: time.Now().UTC(), Version: Version, Streams: map[string]uint64{}}
	for name, h := range heads {
		m.Streams[name] = h.Last
	}
	man, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	// Badger's stream has no length up front; tar needs one: spool it.
	spool, err := os.CreateTemp("", "townlink-backup-*")
	if err != nil {
		return fmt.Errorf("gateway: backup: %w", err)
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	if err := db.Backup(spool); err != nil {
		return err
	}
	size, err := spool.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return err
	}
	type member struct {
		name string
		mode int64
		size int64
		r    io.Reader
	}
	members := []member{
		{memberManifest, 0o644, int64(len(man)), bytes.NewReader(man)},
		{memberKey, 0o600, int64(len(key)), bytes.NewReader(key)},
		{memberStore, 0o600, size, spool},
	}
	counters, _ := filepath.Glob(filepath.Join(cfg.Gateway.DataDir, countersDir, "*.count"))
	for _, c := range counters {
		data, err := os.ReadFile(c)
		if err != nil {
			return fmt.Errorf("gateway: backup: pulse counter: %w", err)
		}
		members = append(members, member{countersDir + "/" + filepath.Base(c), 0o600, int64(len(data)), bytes.NewReader(data)})
	}
	tw := tar.NewWriter(w)
	for _, mem := range members {
		if err := tw.WriteHeader(&tar.Header{Name: mem.name, Mode: mem.mode, Size: mem.size, ModTime: m.Created, Typeflag: tar.TypeReg}); err != nil {
			return fmt.Errorf("gateway: backup: %w", err)
		}
		if _, err := io.Copy(tw, mem.r); err != nil {
			return fmt.Errorf("gateway: backup: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("gateway: backup: %w", err)
	}
	return nil
}

// backupFile is a backup read back: the manifest, the key and the store
// stream spooled to a file.
type backupFile struct {
	m        manifest
	key      []byte
	store    *os.File          // caller removes it
	counters map[string][]byte // file name → content
}

// maxSmallMember bounds the manifest and the key in an archive.
const maxSmallMember = 1 << 20

func readBackup(r io.Reader) (*backupFile, error) {
	tr := tar.NewReader(r)
	b := &backupFile{}
	var haveMan bool
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.close()
			return nil, fmt.Errorf("%w: %w", ErrBackup, err)
		}
		switch h.Name {
		case memberManifest, memberKey:
			if h.Size > maxSmallMember {
				b.close()
				return nil, fmt.Errorf("%w: %s is %d bytes", ErrBackup, h.Name, h.Size)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				b.close()
				return nil, fmt.Errorf("%w: %s: %w", ErrBackup, h.Name, err)
			}
			if h.Name == memberKey {
				b.key = data
				continue
			}
			if err := json.Unmarshal(data, &b.m); err != nil || b.m.Format != backupFormat {
				b.close()
				return nil, fmt.Errorf("%w: manifest is not %s (%v)", ErrBackup, backupFormat, err)
			}
			haveMan = true
		case memberStore:
			f, err := os.CreateTemp("", "townlink-restore-*")
			if err != nil {
				b.close()
				return nil, err
			}
			b.store = f
			if _, err := io.Copy(f, tr); err != nil {
				b.close()
				return nil, fmt.Errorf("%w: %s: %w", ErrBackup, h.Name, err)
			}
		default:
			name, ok := strings.CutPrefix(h.Name, countersDir+"/")
			if !ok || name != filepath.Base(name) || !strings.HasSuffix(name, ".count") || strings.HasPrefix(name, ".") || h.Size > maxSmallMember {
				b.close()
				return nil, fmt.Errorf("%w: unknown member %q", ErrBackup, h.Name)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				b.close()
				return nil, fmt.Errorf("%w: %s: %w", ErrBackup, h.Name, err)
			}
			if b.counters == nil {
				b.counters = map[string][]byte{}
			}
			b.counters[name] = data
		}
	}
	if !haveMan || b.key == nil || b.store == nil {
		b.close()
		return nil, fmt.Errorf("%w: want the members %s, %s and %s", ErrBackup, memberManifest, memberKey, memberStore)
	}
	return b, nil
}

func (b *backupFile) close() {
	if b.store != nil {
		b.store.Close()
		os.Remove(b.store.Name())
	}
}

// dirExists reports whether dir exists and has entries.
func dirExists(dir string) bool {
	ents, err := os.ReadDir(dir)
	return err == nil && len(ents) > 0 || err != nil && !errors.Is(err, fs.ErrNotExist)
}

// BackupHandler serves an online backup (Gateway.Backup) as a tar file on
// POST, for the gateway's local control socket: `townlink backup` while
// the gateway runs posts there. The backup holds the identity key, so
// mount it only where the metrics and status are not: on the socket that
// only root and the townlink user may open.
func (g *Gateway) BackupHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST to take a backup", http.StatusMethodNotAllowed)
			return
		}
		// Spool first: an error must become a status, not half a file.
		f, err := os.CreateTemp("", "townlink-backup-*.tar")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer os.Remove(f.Name())
		defer f.Close()
		if err := g.Backup(f); err != nil {
			g.log.Error("backup failed", "err", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		size, _ := f.Seek(0, io.SeekCurrent)
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/x-tar")
		w.Header().Set("Content-Length", fmt.Sprint(size))
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", g.cfg.Gateway.ID+".backup"))
		if _, err := io.Copy(w, f); err != nil {
			g.log.Warn("backup not fully sent", "err", err)
			return
		}
		g.log.Info("backup taken", "bytes", size)
	})
}
