package badgerq

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/dgraph-io/badger/v4"
)

// Backup writes a consistent snapshot of the whole store — every stream's
// entries and position, and every KV table — to w in Badger's backup
// format, while the queue is in use (it reads at one timestamp, like any
// read transaction). Restore reads it back.
func (db *DB) Backup(w io.Writer) error {
	db.closeMu.RLock()
	defer db.closeMu.RUnlock()
	if db.closed {
		return fmt.Errorf("badgerq: backup: %w", errClosed)
	}
	db.flush() // acked records are deleted before the copy, not restored later
	if _, err := db.bdb.Backup(w, 0); err != nil {
		return fmt.Errorf("badgerq: backup: %w", err)
	}
	return nil
}

// Restore loads a backup written by DB.Backup into o.Dir, which must not
// exist or be empty: a restore never merges into a live store. Open the
// store afterwards as usual.
func Restore(o Options, r io.Reader) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if ents, err := os.ReadDir(o.Dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("%w: restore into %s: the directory is not empty", ErrArgument, o.Dir)
	}
	bdb, err := openBadger(o)
	if err != nil {
		return err
	}
	if err := bdb.Load(r, 64); err != nil {
		return errors.Join(fmt.Errorf("badgerq: restore: %w", err), bdb.Close())
	}
	return closeBadger(bdb)
}

// Head is a stream's position: its last assigned seq and the seal state
// committed with it (on evidence, the hash of the last record).
type Head struct {
	Last  uint64
	State []byte
}

// Heads returns every stream's position.
func (db *DB) Heads() (map[string]Head, error) {
	db.closeMu.RLock()
	defer db.closeMu.RUnlock()
	if db.closed {
		return nil, fmt.Errorf("badgerq: heads: %w", errClosed)
	}
	return heads(db.bdb)
}

func heads(bdb *badger.DB) (map[string]Head, error) {
	out := make(map[string]Head)
	err := bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(metaTag)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			name := string(it.Item().Key()[len(metaTag):])
			val, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			last, state, err := decodeMeta(val)
			if err != nil {
				return fmt.Errorf("stream %s: %w", name, err)
			}
			out[name] = Head{Last: last, State: state}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("badgerq: heads: %w", err)
	}
	return out, nil
}

// Move sets a stream's position forward in a closed store: its last seq
// becomes Last and its seal state State; with Entry, Entry is stored as
// the record of seq Last (already sealed for that seq). The seqs between
// the old last and the new one hold nothing: the queue treats them as
// acknowledged, so they are never sent. It is how a restore skips the
// seqs the platform may already have received (gateway.Restore).
type Move struct {
	Last  uint64
	State []byte
	Entry []byte
}

// MoveStreams applies moves to the store in o.Dir, which no DB may have
// open, in one transaction, and returns the positions before. A move must
// go forward (Last above the stream's last); a stream without a position
// is created.
func MoveStreams(o Options, moves map[string]Move) (before map[string]Head, err error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	for name := range moves {
		if err := validName(name); err != nil {
			return nil, err
		}
	}
	bdb, err := openBadger(o)
	if err != nil {
		return nil, err
	}
	before, err = heads(bdb)
	if err != nil {
		return nil, errors.Join(err, bdb.Close())
	}
	err = bdb.Update(func(txn *badger.Txn) error {
		for name, m := range moves {
			if m.Last <= before[name].Last {
				return fmt.Errorf("%w: stream %s: move to %d is not past its last seq %d", ErrArgument, name, m.Last, before[name].Last)
			}
			if err := txn.Set(metaKey(name), encodeMeta(m.Last, m.State)); err != nil {
				return err
			}
			if m.Entry != nil {
				if err := txn.Set(entryKey(nil, entryPrefix(name), m.Last), m.Entry); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("badgerq: move streams: %w", err), bdb.Close())
	}
	return before, closeBadger(bdb)
}

func openBadger(o Options) (*badger.DB, error) {
	o = o.withDefaults()
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bdb, err := badger.Open(o.badgerOptions(log.With("queue", "badgerq")))
	if err != nil {
		return nil, fmt.Errorf("badgerq: open %s: %w", o.Dir, err)
	}
	return bdb, nil
}

func closeBadger(bdb *badger.DB) error {
	if err := bdb.Close(); err != nil {
		return fmt.Errorf("badgerq: close: %w", err)
	}
	return nil
}
