package certs

import (
	"crypto/tls"
	"fmt"
	"sync"
	"time"
)

// KeyPair is a certificate and its key, re-read from their files when
// either changes (checked at every Get: two stats). A file that becomes
// unreadable or invalid keeps the last good pair in use. The uplink's
// client certificate and the field broker's server certificate both use
// it.
type KeyPair struct {
	cert, key string

	mu   sync.Mutex
	mod  time.Time
	pair *tls.Certificate
}

// NewKeyPair loads the pair once; an error says what is wrong with it.
func NewKeyPair(certFile, keyFile string) (*KeyPair, error) {
	k := &KeyPair{cert: certFile, key: keyFile}
	if _, err := k.Get(); err != nil {
		return nil, err
	}
	return k, nil
}

// Get returns the current pair, re-read if its files changed.
func (k *KeyPair) Get() (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	mod, err := newest(k.cert, k.key)
	if err == nil && k.pair != nil && !mod.After(k.mod) {
		return k.pair, nil
	}
	if err == nil {
		var pair tls.Certificate
		if pair, err = tls.LoadX509KeyPair(k.cert, k.key); err == nil {
			k.pair, k.mod = &pair, mod
			return k.pair, nil
		}
	}
	if k.pair != nil {
		return k.pair, nil
	}
	return nil, fmt.Errorf("%w: %s / %s: %w", ErrTLS, k.cert, k.key, err)
}
