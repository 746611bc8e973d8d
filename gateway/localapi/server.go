package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SocketMode is the control socket's permission: the gateway's user and
// group (the technicians' group) only.
const SocketMode = 0o660

// maxPath is the longest Unix socket path Linux takes.
const maxPath = 107

// ErrInUse reports a socket path another running gateway answers on.
var ErrInUse = errors.New("localapi: socket in use")

// Listen opens the control socket at path, mode SocketMode. A socket
// left behind by a gateway that died is replaced; one that a running
// gateway answers on, or a path that is not a socket, is refused.
func Listen(path string) (net.Listener, error) {
	if len(path) > maxPath {
		return nil, fmt.Errorf("localapi: socket path %s is %d bytes; a Unix socket path holds at most %d (set gateway.socket to a shorter one)", path, len(path), maxPath)
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("localapi: %s exists and is not a socket; remove it or set gateway.socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%w: a gateway already answers on %s", ErrInUse, path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("localapi: stale socket: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("localapi: socket directory: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("localapi: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	if err := os.Chmod(path, SocketMode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("localapi: %w", err)
	}
	return ln, nil
}

// Serve serves h on ln until ctx ends, then shuts down (waiting a little
// for requests in flight) and closes ln.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned by Serve: waited for below
		defer wg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}()
	err := srv.Serve(ln)
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Run serves the control socket at path until ctx ends.
func (v *Service) Run(ctx context.Context, path string, log *slog.Logger) error {
	ln, err := Listen(path)
	if err != nil {
		return err
	}
	if log != nil {
		log.Info("control socket listening", "path", path)
	}
	return Serve(ctx, ln, v.Handler())
}

// Handler is the local API over HTTP.
func (v *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, v.Status(r.Context()))
	})
	mux.HandleFunc("POST /read", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("device")
		if id == "" {
			writeError(w, fmt.Errorf("%w: /read?device=ID", ErrBadRequest))
			return
		}
		res, err := v.Read(r.Context(), id)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("POST /time-sync", func(w http.ResponseWriter, r *http.Request) {
		res, err := v.TimeSync(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("POST /scan", func(w http.ResponseWriter, r *http.Request) { StreamScan(w, r, v.Scan) })
	return mux
}

// ScanFunc scans a line (Service.Scan).
type ScanFunc func(ctx context.Context, line string, opts ScanOptions, progress func(Progress)) ([]Found, error)

// StreamScan answers a scan request (line=, baud=, protocol=): the scan's
// progress and result as JSON lines (ScanEvent), flushed as they come. A
// scan that fails before any progress (no such line, no scanner) gets a
// plain error answer with its status instead.
func StreamScan(w http.ResponseWriter, r *http.Request, scan ScanFunc) {
	line := r.URL.Query().Get("line")
	if line == "" {
		writeError(w, fmt.Errorf("%w: scan?line=NAME", ErrBadRequest))
		return
	}
	opts, err := ParseScanOptions(r.URL.Query())
	if err != nil {
		writeError(w, err)
		return
	}
	fl, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	var mu sync.Mutex // progress may come from the scan's goroutines
	started := false
	send := func(e ScanEvent) {
		mu.Lock()
		defer mu.Unlock()
		if !started {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		enc.Encode(e)
		if fl != nil {
			fl.Flush()
		}
	}
	found, err := scan(r.Context(), line, opts, func(p Progress) { send(ScanEvent{Progress: &p}) })
	mu.Lock()
	early := !started && err != nil && len(found) == 0
	mu.Unlock()
	if early {
		writeError(w, err)
		return
	}
	last := ScanEvent{Found: found, Done: true}
	if err != nil {
		last.Error = err.Error()
	}
	send(last)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// StatusOf is the HTTP status of an action's error.
func StatusOf(err error) int {
	switch {
	case errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnknown):
		return http.StatusNotFound
	case errors.Is(err, ErrUnsupported):
		return http.StatusNotImplemented
	case errors.Is(err, ErrDevice):
		return http.StatusBadGateway
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusGatewayTimeout
	}
	return http.StatusConflict // refused: the gateway said why
}

func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, StatusOf(err), map[string]string{"error": err.Error()})
}

// scanProtocols are the protocols a scan knows.
var scanProtocols = []string{"dlt645", "cjt188", "modbus"}

// ParseScanOptions reads /scan's baud= and protocol= parameters.
func ParseScanOptions(q url.Values) (ScanOptions, error) {
	var o ScanOptions
	switch b := q.Get("baud"); {
	case b == "", b == "auto":
		o.Baud = b
	default:
		n, err := strconv.Atoi(b)
		if err != nil || n < 50 || n > 4_000_000 {
			return o, fmt.Errorf("%w: baud=%q: want auto or a rate such as 2400", ErrBadRequest, clip(b))
		}
		o.Baud = strconv.Itoa(n)
	}
	for _, list := range q["protocol"] {
		for _, p := range strings.Split(list, ",") {
			if !slices.Contains(scanProtocols, p) {
				return o, fmt.Errorf("%w: protocol=%q: want %s", ErrBadRequest, clip(p), strings.Join(scanProtocols, ", "))
			}
			if !slices.Contains(o.Protocols, p) {
				o.Protocols = append(o.Protocols, p)
			}
		}
	}
	return o, nil
}

// Query is the options as /scan's parameters.
func (o ScanOptions) Query() url.Values {
	q := url.Values{}
	if o.Baud != "" {
		q.Set("baud", o.Baud)
	}
	if len(o.Protocols) > 0 {
		q.Set("protocol", strings.Join(o.Protocols, ","))
	}
	return q
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
