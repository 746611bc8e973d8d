package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/townlink/townlink/gateway/certs"
)

// Errors of a login.
var (
	ErrNoPassword    = errors.New("web: actions are disabled (no web.password_file)")
	ErrWrongPassword = errors.New("web: wrong password")
	ErrBackoff       = errors.New("web: too many wrong passwords, wait")
)

// cookieName is the session cookie.
const cookieName = "townlink_session"

// maxSessions bounds the sessions kept: the oldest goes first.
const maxSessions = 32

// auth checks passwords and keeps sessions.
type auth struct {
	file    string // "" : no login
	ttl     time.Duration
	minWait time.Duration // the back-off after the first wrong password; doubles, up to maxWait
	maxWait time.Duration
	now     func() time.Time

	mu       sync.Mutex
	sessions map[string]time.Time // token → expiry
	fails    int
	until    time.Time // no attempt is checked before
}

// login checks a password. After each wrong one, attempts are refused
// unchecked for a back-off that doubles (1 s, 2 s, 4 s … up to maxWait);
// the right one resets it and returns a new session token.
func (a *auth) login(password string) (token string, wait time.Duration, err error) {
	if a.file == "" {
		return "", 0, ErrNoPassword
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if now.Before(a.until) {
		return "", a.until.Sub(now), ErrBackoff
	}
	want, err := certs.ReadSecret(a.file)
	if err != nil {
		return "", 0, fmt.Errorf("web: web.password_file: %w", err)
	}
	if want == "" {
		return "", 0, fmt.Errorf("web: web.password_file %s is empty; write a password into it", a.file)
	}
	h1, h2 := sha256.Sum256([]byte(password)), sha256.Sum256([]byte(want))
	if subtle.ConstantTimeCompare(h1[:], h2[:]) != 1 {
		a.fails++
		wait := a.minWait << min(a.fails-1, 16)
		if wait > a.maxWait || wait <= 0 {
			wait = a.maxWait
		}
		a.until = now.Add(wait)
		return "", wait, ErrWrongPassword
	}
	a.fails, a.until = 0, time.Time{}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", 0, fmt.Errorf("web: session: %w", err)
	}
	token = hex.EncodeToString(b[:])
	if a.sessions == nil {
		a.sessions = map[string]time.Time{}
	}
	a.prune(now)
	a.sessions[token] = now.Add(a.ttl)
	return token, 0, nil
}

// prune drops expired sessions and, at the bound, the oldest.
func (a *auth) prune(now time.Time) {
	for t, exp := range a.sessions {
		if !now.Before(exp) {
			delete(a.sessions, t)
		}
	}
	for len(a.sessions) >= maxSessions {
		var oldest string
		for t, exp := range a.sessions {
			if oldest == "" || exp.Before(a.sessions[oldest]) {
				oldest = t
			}
		}
		delete(a.sessions, oldest)
	}
}

// valid reports whether the request carries a live session.
func (a *auth) valid(r *http.Request) bool {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.sessions[c.Value]
	return ok && a.now().Before(exp)
}

func (a *auth) logout(r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		a.mu.Lock()
		delete(a.sessions, c.Value)
		a.mu.Unlock()
	}
}

func sessionCookie(r *http.Request, token string, ttl time.Duration) *http.Cookie {
	c := &http.Cookie{Name: cookieName, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil}
	if token == "" {
		c.MaxAge = -1
	} else {
		c.MaxAge = int(ttl.Seconds())
	}
	return c
}
