package badgerq

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Ping reports whether the store answers: it is open and a read
// transaction of Badger succeeds. The gateway's systemd watchdog is fed
// only while it does.
func (db *DB) Ping() error {
	db.closeMu.RLock()
	defer db.closeMu.RUnlock()
	if db.closed {
		return fmt.Errorf("badgerq: ping: %w", errClosed)
	}
	err := db.bdb.View(func(txn *badger.Txn) error {
		_, err := txn.Get(metaKey("ping"))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("badgerq: ping: %w", err)
	}
	return nil
}
