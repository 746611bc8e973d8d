package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/localapi"
	"github.com/townlink/townlink/gateway/recent"
)

// fakeBackend counts the actions it is asked for.
type fakeBackend struct {
	mu    sync.Mutex
	reads []string
	scan  localapi.ScanFunc // nil: not available
}

func (f *fakeBackend) Status(context.Context) *localapi.Status {
	return &localapi.Status{Gateway: "gw-1", Devices: []localapi.Device{{ID: "m1", State: "ok"}}}
}

func (f *fakeBackend) Read(_ context.Context, id string) (*localapi.ReadResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads = append(f.reads, id)
	if id != "m1" {
		return nil, localapi.ErrUnknown
	}
	return &localapi.ReadResult{Device: id, Values: []localapi.PointValue{{Name: "p_kw", Value: "1.5"}}}, nil
}

func (f *fakeBackend) TimeSync(context.Context) (*localapi.TimeSyncResult, error) {
	return &localapi.TimeSyncResult{Lines: 1}, nil
}

func (f *fakeBackend) Scan(ctx context.Context, line string, o localapi.ScanOptions, p func(localapi.Progress)) ([]localapi.Found, error) {
	if f.scan == nil {
		return nil, localapi.ErrUnsupported
	}
	return f.scan(ctx, line, o, p)
}

func (f *fakeBackend) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reads)
}

type rig struct {
	t    *testing.T
	srv  *httptest.Server
	be   *fakeBackend
	now  time.Time
	mu   sync.Mutex
	auth *auth
}

func newRig(t *testing.T, pwFile string) *rig {
	r := &rig{t: t, be: &fakeBackend{}, now: time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)}
	s, err := New(Options{PasswordFile: pwFile, Backend: r.be, History: recent.New(recent.Options{}), Now: r.clock})
	if err != nil {
		t.Fatal(err)
	}
	r.auth = s.auth
	r.srv = httptest.NewServer(s.Handler())
	t.Cleanup(r.srv.Close)
	return r
}

func (r *rig) clock() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

func (r *rig) advance(d time.Duration) {
	r.mu.Lock()
	r.now = r.now.Add(d)
	r.mu.Unlock()
}

// post sends a POST as the page's own script would (same origin).
func (r *rig) post(path, body string, cookie *http.Cookie, hdr ...string) *http.Response {
	r.t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.srv.URL+path, strings.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", r.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (r *rig) login(pw string) *http.Response {
	return r.post("/api/login", url.Values{"password": {pw}}.Encode(), nil)
}

func sessionOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == cookieName {
			return c
		}
	}
	return nil
}

func writePW(t *testing.T, pw string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "web.pw")
	if err := os.WriteFile(p, []byte(pw+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func body(t *testing.T, resp *http.Response) string {
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestActionsNeedALogin(t *testing.T) {
	r := newRig(t, writePW(t, "s3cret pass", 0o600))
	if resp := r.post("/api/read?device=m1", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("read without login: %d", resp.StatusCode)
	}
	if n := r.be.readCount(); n != 0 {
		t.Fatalf("the device was read %d times without a login", n)
	}
	resp := r.login("s3cret pass")
	c := sessionOf(resp)
	if resp.StatusCode != http.StatusOK || c == nil {
		t.Fatalf("login: %d %s", resp.StatusCode, body(t, resp))
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || len(c.Value) != 64 {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/, a 32-byte token", c)
	}
	resp = r.post("/api/read?device=m1", "", c)
	if got := body(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(got, `"value":"1.5"`) {
		t.Fatalf("read after login: %d %s", resp.StatusCode, got)
	}
	if resp := r.post("/api/read?device=nope", "", c); resp.StatusCode != http.StatusNotFound {
		t.Errorf("read of an unknown device: %d, want 404", resp.StatusCode)
	}
	// A forged or expired token is no session.
	if resp := r.post("/api/read?device=m1", "", &http.Cookie{Name: cookieName, Value: strings.Repeat("0", 64)}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged session: %d", resp.StatusCode)
	}
	r.advance(8*time.Hour + time.Second)
	if resp := r.post("/api/time-sync", "", c); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("expired session: %d", resp.StatusCode)
	}
}

func TestCrossOriginPostsAreRefused(t *testing.T) {
	r := newRig(t, writePW(t, "pw", 0o600))
	c := sessionOf(r.login("pw"))
	if c == nil {
		t.Fatal("no session")
	}
	before := r.be.readCount()
	// A page elsewhere posting with the victim's cookie.
	resp := r.post("/api/read?device=m1", "", c, "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site")
	if resp.StatusCode != http.StatusForbidden || r.be.readCount() != before {
		t.Fatalf("cross-site read: %d, reads %d→%d", resp.StatusCode, before, r.be.readCount())
	}
	if resp := r.post("/api/login", "password=pw", nil, "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site login: %d", resp.StatusCode)
	}
	// The page itself still reads without login.
	resp2, err := http.Get(r.srv.URL + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	if resp2.StatusCode != http.StatusOK {
		t.Errorf("status: %d", resp2.StatusCode)
	}
}

func TestWrongPasswordsBackOff(t *testing.T) {
	r := newRig(t, writePW(t, "right", 0o600))
	resp := r.login("wrong")
	if resp.StatusCode != http.StatusUnauthorized || sessionOf(resp) != nil {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q after the first wrong password, want 1", got)
	}
	// Within the back-off even the right password is not checked.
	if resp := r.login("right"); resp.StatusCode != http.StatusTooManyRequests || sessionOf(resp) != nil {
		t.Fatalf("login within the back-off: %d", resp.StatusCode)
	}
	r.advance(time.Second)
	if resp := r.login("wrong again"); resp.Header.Get("Retry-After") != "2" {
		t.Errorf("second wrong password: Retry-After %q, want 2 (doubling)", resp.Header.Get("Retry-After"))
	}
	for range 10 {
		r.advance(time.Minute)
		r.login("wrong")
	}
	r.advance(time.Second)
	if resp := r.login("right"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("back-off not capped at a minute? %d", resp.StatusCode)
	}
	r.advance(time.Minute)
	if resp := r.login("right"); resp.StatusCode != http.StatusOK || sessionOf(resp) == nil {
		t.Fatalf("right password after the back-off: %d", resp.StatusCode)
	}
	// A success resets the back-off.
	r.login("wrong")
	r.advance(time.Second)
	if resp := r.login("right"); resp.StatusCode != http.StatusOK {
		t.Fatalf("back-off not reset by a success: %d", resp.StatusCode)
	}
}

func TestPasswordFileMustBePrivateAndPresent(t *testing.T) {
	for _, c := range []struct {
		name string
		file func(t *testing.T) string
		want string
	}{
		{"0644", func(t *testing.T) string { return writePW(t, "pw", 0o644) }, "has mode 0644; run: chmod 600"},
		{"0640", func(t *testing.T) string { return writePW(t, "pw", 0o640) }, "has mode 0640"},
		{"missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "none.pw") }, "no such file"},
		{"empty", func(t *testing.T) string { return writePW(t, "", 0o600) }, "is empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, c.file(t))
			resp := r.login("pw")
			got := body(t, resp)
			if resp.StatusCode != http.StatusServiceUnavailable || sessionOf(resp) != nil || !strings.Contains(got, c.want) {
				t.Fatalf("login with a %s password file: %d %s, want 503 saying %q", c.name, resp.StatusCode, got, c.want)
			}
		})
	}
	r := newRig(t, "")
	if resp := r.login("anything"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("login without a password file configured: %d, want 403", resp.StatusCode)
	}
	_, _, err := r.auth.login("x")
	if !errors.Is(err, ErrNoPassword) {
		t.Errorf("err %v", err)
	}
}

func TestPageAndAssetsAreEmbedded(t *testing.T) {
	r := newRig(t, "")
	for path, want := range map[string]string{"/": "<main>", "/app.js": "EventSource", "/app.css": ".dev"} {
		resp, err := http.Get(r.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		got := body(t, resp)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(got, want) {
			t.Errorf("%s: %d, no %q", path, resp.StatusCode, want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
	}
}

func TestEventsPushTheStatus(t *testing.T) {
	r := newRig(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.srv.URL+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	buf := make([]byte, 4096)
	var got string
	for !strings.Contains(got, "\n\n") {
		n, err := resp.Body.Read(buf)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got += string(buf[:n])
	}
	if !strings.Contains(got, "event: status\ndata: {") || !strings.Contains(got, `"gateway":"gw-1"`) {
		t.Fatalf("first event %q", got)
	}
}

func TestHistoryGivesEachNumericPointsLastHour(t *testing.T) {
	h := recent.New(recent.Options{})
	h.Observe([]drivers.Reading{{Device: "m1", Values: map[string]drivers.Value{"p_kw": drivers.Dec(15, -1), "mode": drivers.Text("auto")}}})
	s, err := New(Options{Backend: &fakeBackend{}, History: h})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/history?device=m1", nil))
	var got map[string][]recent.Sample
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got["p_kw"]) != 1 || got["p_kw"][0].V != 1.5 {
		t.Fatalf("history %s", rec.Body)
	}
}

func TestScanStreamsToTheLoggedInPage(t *testing.T) {
	r := newRig(t, writePW(t, "pw", 0o600))
	if resp := r.post("/api/scan?line=RS485-1", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("scan without login: %d", resp.StatusCode)
	}
	c := sessionOf(r.login("pw"))
	if resp := r.post("/api/scan?line=RS485-1", "", c); resp.StatusCode != http.StatusNotImplemented {
		t.Fatalf("scan without a scanner: %d %s", resp.StatusCode, body(t, resp))
	}
	r.be.scan = func(_ context.Context, line string, o localapi.ScanOptions, p func(localapi.Progress)) ([]localapi.Found, error) {
		if line != "RS485-1" || o.Baud != "auto" {
			return nil, localapi.ErrUnknown
		}
		p(localapi.Progress{Done: 1, Total: 2})
		p(localapi.Progress{Done: 2, Total: 2})
		return []localapi.Found{{Protocol: "cjt188", Address: "12345678901234"}}, nil
	}
	resp := r.post("/api/scan?line=RS485-1&baud=auto", "", c)
	got := body(t, resp)
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if resp.Header.Get("Content-Type") != "application/x-ndjson" || len(lines) != 3 ||
		!strings.Contains(lines[1], `"done":2`) || !strings.Contains(lines[2], `"address":"12345678901234"`) || !strings.Contains(lines[2], `"done":true`) {
		t.Fatalf("scan answer %s %q", resp.Header.Get("Content-Type"), got)
	}
	if resp := r.post("/api/scan?line=RS485-9", "", c); resp.StatusCode != http.StatusNotFound {
		t.Errorf("scan of another line: %d", resp.StatusCode)
	}
	if resp := r.post("/api/scan?line=RS485-1&baud=fast", "", c); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("scan with a bad baud: %d", resp.StatusCode)
	}
}
