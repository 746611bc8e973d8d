package fieldbroker

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// certFiles is the TLS listener's certificate, re-read when the
// modification time of its certificate or key file changes (checked at
// every handshake: two stats). A file that cannot be read or parsed keeps
// the last good certificate in use.
type certFiles struct {
	cert, key string

	mu    sync.Mutex
	mtime time.Time
	c     *tls.Certificate
}

func (r *certFiles) get() (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var newest time.Time
	for _, f := range []string{r.cert, r.key} {
		st, err := os.Stat(f)
		if err != nil {
			if r.c != nil {
				return r.c, nil
			}
			return nil, fmt.Errorf("%w: %w", ErrTLSFiles, err)
		}
		if st.ModTime().After(newest) {
			newest = st.ModTime()
		}
	}
	if r.c != nil && newest.Equal(r.mtime) {
		return r.c, nil
	}
	c, err := tls.LoadX509KeyPair(r.cert, r.key)
	if err != nil {
		if r.c != nil {
			return r.c, nil
		}
		return nil, fmt.Errorf("%w: %s / %s: %w", ErrTLSFiles, r.cert, r.key, err)
	}
	r.c, r.mtime = &c, newest
	return r.c, nil
}
