package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/townlink/townlink/gateway/localapi"
	"github.com/townlink/townlink/gateway/recent"
)

//go:embed assets
var assets embed.FS

// Backend is what the page shows and does (localapi.Service).
type Backend interface {
	Status(ctx context.Context) *localapi.Status
	Read(ctx context.Context, device string) (*localapi.ReadResult, error)
	TimeSync(ctx context.Context) (*localapi.TimeSyncResult, error)
	Scan(ctx context.Context, line string, opts localapi.ScanOptions, progress func(localapi.Progress)) ([]localapi.Found, error)
}

// History is the last hour of each point (recent.Store).
type History interface {
	Last(device string) []recent.Point
	Series(device, point string) []recent.Sample
}

// Options configure the page. Backend and History are required.
type Options struct {
	Listen       string // host:port
	PasswordFile string // "": read-only, no login
	Backend      Backend
	History      History
	Interval     time.Duration    // between live updates; default 2 s
	SessionTTL   time.Duration    // default 8 h
	LoginBackoff time.Duration    // after the first wrong password, doubling up to a minute; default 1 s
	ActionTime   time.Duration    // an action's deadline (a scan's is 20 times longer); default 30 s
	Now          func() time.Time // nil: time.Now
	Logger       *slog.Logger
}

// Server serves the page.
type Server struct {
	o    Options
	log  *slog.Logger
	auth *auth
	addr atomic.Pointer[string] // where Run listens
}

// New returns a Server. It does no I/O.
func New(o Options) (*Server, error) {
	if o.Backend == nil || o.History == nil {
		return nil, errors.New("web: Backend and History are required")
	}
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 8 * time.Hour
	}
	if o.LoginBackoff <= 0 {
		o.LoginBackoff = time.Second
	}
	if o.ActionTime <= 0 {
		o.ActionTime = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &auth{file: o.PasswordFile, ttl: o.SessionTTL, minWait: o.LoginBackoff, maxWait: time.Minute, now: o.Now}
	return &Server{o: o, log: log, auth: a}, nil
}

// Run serves on Options.Listen until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.o.Listen)
	if err != nil {
		return fmt.Errorf("web.listen %s: %w", s.o.Listen, err)
	}
	addr := ln.Addr().String()
	s.addr.Store(&addr)
	defer s.addr.Store(nil)
	s.log.Info("web page listening", "url", "http://"+addr+"/", "login", s.o.PasswordFile != "")
	return localapi.Serve(ctx, ln, s.Handler())
}

// Addr is the address Run listens on ("" when it does not): the port
// chosen for web.listen: 127.0.0.1:0, say.
func (s *Server) Addr() string {
	if a := s.addr.Load(); a != nil {
		return *a
	}
	return ""
}

// Handler is the page and its API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	mux.Handle("GET /", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.o.Backend.Status(r.Context()))
	})
	mux.HandleFunc("GET /api/events", s.events)
	mux.HandleFunc("GET /api/history", s.history)
	mux.HandleFunc("GET /api/session", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"logged_in": s.auth.valid(r), "login_enabled": s.o.PasswordFile != ""})
	})
	mux.HandleFunc("POST /api/login", s.login)
	mux.HandleFunc("POST /api/logout", func(w http.ResponseWriter, r *http.Request) {
		s.auth.logout(r)
		http.SetCookie(w, sessionCookie(r, "", 0))
		writeJSON(w, http.StatusOK, map[string]bool{"logged_in": false})
	})
	mux.Handle("POST /api/read", s.action(func(ctx context.Context, r *http.Request) (any, error) {
		return s.o.Backend.Read(ctx, r.URL.Query().Get("device"))
	}))
	mux.Handle("POST /api/time-sync", s.action(func(ctx context.Context, r *http.Request) (any, error) {
		return s.o.Backend.TimeSync(ctx)
	}))
	mux.Handle("POST /api/scan", s.loggedIn(func(w http.ResponseWriter, r *http.Request) {
		// A scan of 247 Modbus addresses at several settings takes minutes.
		ctx, cancel := context.WithTimeout(r.Context(), 20*s.o.ActionTime)
		defer cancel()
		s.log.Info("web action", "path", r.URL.Path, "query", r.URL.RawQuery)
		localapi.StreamScan(w, r.WithContext(ctx), s.o.Backend.Scan)
	}))
	h := http.Handler(mux)
	// Every POST must come from the page itself: a cross-origin form or
	// fetch is refused before any handler (login included) sees it.
	h = http.NewCrossOriginProtection().Handler(h)
	return headers(h)
}

// headers sets the page's security headers.
func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

// loggedIn serves h to a logged-in user only.
func (s *Server) loggedIn(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.auth.valid(r) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "log in first"})
			return
		}
		h(w, r)
	})
}

// action runs an action for a logged-in user within ActionTime.
func (s *Server) action(run func(ctx context.Context, r *http.Request) (any, error)) http.Handler {
	return s.loggedIn(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.o.ActionTime)
		defer cancel()
		res, err := run(ctx, r)
		if err != nil {
			s.log.Info("web action failed", "path", r.URL.Path, "query", r.URL.RawQuery, "err", err)
			writeJSON(w, localapi.StatusOf(err), map[string]string{"error": err.Error()})
			return
		}
		s.log.Info("web action", "path", r.URL.Path, "query", r.URL.RawQuery)
		writeJSON(w, http.StatusOK, res)
	})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	token, wait, err := s.auth.login(r.PostFormValue("password"))
	switch {
	case err == nil:
		http.SetCookie(w, sessionCookie(r, token, s.o.SessionTTL))
		s.log.Info("web login")
		writeJSON(w, http.StatusOK, map[string]bool{"logged_in": true})
	case errors.Is(err, ErrBackoff), errors.Is(err, ErrWrongPassword):
		if errors.Is(err, ErrWrongPassword) {
			s.log.Warn("web login: wrong password", "remote", r.RemoteAddr, "next_try_in", wait)
		}
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		code := http.StatusUnauthorized
		if errors.Is(err, ErrBackoff) {
			code = http.StatusTooManyRequests
		}
		writeJSON(w, code, map[string]string{"error": fmt.Sprintf("%v; try again in %s", err, wait.Round(time.Second))})
	case errors.Is(err, ErrNoPassword):
		writeJSON(w, http.StatusForbidden, map[string]string{"error": err.Error()})
	default:
		s.log.Error("web login refused", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
	}
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	dev := r.URL.Query().Get("device")
	out := map[string][]recent.Sample{}
	for _, p := range s.o.History.Last(dev) {
		if p.Numeric {
			out[p.Name] = s.o.History.Series(dev, p.Name)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// events pushes the status every Interval until the client goes.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func() error {
		b, err := json.Marshal(s.o.Backend.Status(r.Context()))
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "retry: 3000\nevent: status\ndata: %s\n\n", b); err != nil {
			return err
		}
		return rc.Flush()
	}
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for {
		if err := send(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
