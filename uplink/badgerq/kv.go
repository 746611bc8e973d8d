package badgerq

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// kvTag starts every key of a KV table: "k/" + table name + "/" + key.
// Streams use "e/", "a/" and "m/", so a table never sees a stream's keys, and
// a table name cannot hold '/', so no table sees another's.
const kvTag = "k/"

// MaxKVKey is the longest key a KV table takes, in bytes.
const MaxKVKey = 1024

// ErrKVKey reports a key a KV table refuses (empty or too long).
var ErrKVKey = errors.New("badgerq: invalid key")

// KV is a small durable key-value table kept in the DB beside the streams,
// for state that is not a FIFO (for example the command ids already
// answered). Every Put and Delete is its own synced transaction: it
// returns once the change is on disk. It is meant for small tables (up to
// some tens of thousands of keys); its bytes do not count towards any
// stream's quota.
type KV struct {
	db     *DB
	name   string
	prefix []byte
}

// KV returns the table called name (the rules of stream names apply). The
// same table may be opened more than once; each handle sees the same keys.
func (db *DB) KV(name string) (*KV, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	return &KV{db: db, name: name, prefix: []byte(kvTag + name + "/")}, nil
}

func (kv *KV) key(k string) ([]byte, error) {
	if k == "" || len(k) > MaxKVKey {
		return nil, fmt.Errorf("%w: table %s: key of %d bytes, want 1..%d", ErrKVKey, kv.name, len(k), MaxKVKey)
	}
	return append(append([]byte(nil), kv.prefix...), k...), nil
}

// view and update run fn unless the DB is closed (Badger panics on use
// after Close), holding Close off meanwhile.
func (kv *KV) view(fn func(txn *badger.Txn) error) error {
	kv.db.closeMu.RLock()
	defer kv.db.closeMu.RUnlock()
	if kv.db.closed {
		return fmt.Errorf("badgerq: table %s: %w", kv.name, errClosed)
	}
	return kv.db.bdb.View(fn)
}

func (kv *KV) update(fn func(txn *badger.Txn) error) error {
	kv.db.closeMu.RLock()
	defer kv.db.closeMu.RUnlock()
	if kv.db.closed {
		return fmt.Errorf("badgerq: table %s: %w", kv.name, errClosed)
	}
	if err := kv.db.bdb.Update(fn); err != nil {
		return fmt.Errorf("%w: table %s: %w", ErrCommit, kv.name, err)
	}
	return nil
}

// Get returns the value of key, and false if the table has no such key.
func (kv *KV) Get(key string) ([]byte, bool, error) {
	k, err := kv.key(key)
	if err != nil {
		return nil, false, err
	}
	var val []byte
	err = kv.view(func(txn *badger.Txn) error {
		item, err := txn.Get(k)
		if err != nil {
			return err
		}
		val, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("badgerq: table %s: get %q: %w", kv.name, key, err)
	}
	return val, true, nil
}

// Put stores val under key, replacing any value; it returns once the
// change is synced to disk.
func (kv *KV) Put(key string, val []byte) error {
	k, err := kv.key(key)
	if err != nil {
		return err
	}
	v := append([]byte(nil), val...)
	return kv.update(func(txn *badger.Txn) error { return txn.Set(k, v) })
}

// Delete removes keys (absent keys are no error) in one synced transaction.
func (kv *KV) Delete(keys ...string) error {
	ks := make([][]byte, 0, len(keys))
	for _, key := range keys {
		k, err := kv.key(key)
		if err != nil {
			return err
		}
		ks = append(ks, k)
	}
	for len(ks) > 0 {
		n := min(len(ks), int(kv.db.budgetCount/2), 1000)
		batch := ks[:n]
		ks = ks[n:]
		err := kv.update(func(txn *badger.Txn) error {
			for _, k := range batch {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Scan calls fn with every key and value of the table, in key order; val
// is only valid during the call. An error from fn stops the scan and is
// returned.
func (kv *KV) Scan(fn func(key string, val []byte) error) error {
	return kv.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 100, Prefix: kv.prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			var ferr error
			err := item.Value(func(v []byte) error {
				ferr = fn(string(item.Key()[len(kv.prefix):]), v)
				return nil
			})
			if err != nil {
				return fmt.Errorf("badgerq: table %s: read %q: %w", kv.name, item.Key(), err)
			}
			if ferr != nil {
				return ferr
			}
		}
		return nil
	})
}
