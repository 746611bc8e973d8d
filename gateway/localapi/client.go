package localapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
)

// ErrNotRunning reports that no gateway answers on the socket.
var ErrNotRunning = errors.New("localapi: no gateway answering")

// Client talks to a running gateway over its control socket.
type Client struct {
	path string
	hc   *http.Client
}

// NewClient returns a client of the socket at path. It does no I/O.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableCompression: true,
	}
	return &Client{path: path, hc: &http.Client{Transport: tr}}
}

// Path is the socket's path.
func (c *Client) Path() string { return c.path }

// Status asks for the gateway's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	return &st, c.do(ctx, http.MethodGet, "/status", &st)
}

// Read polls one device now.
func (c *Client) Read(ctx context.Context, device string) (*ReadResult, error) {
	var res ReadResult
	return &res, c.do(ctx, http.MethodPost, "/read?device="+url.QueryEscape(device), &res)
}

// TimeSync broadcasts the time to the meters.
func (c *Client) TimeSync(ctx context.Context) (*TimeSyncResult, error) {
	var res TimeSyncResult
	return &res, c.do(ctx, http.MethodPost, "/time-sync", &res)
}

// Scan scans a line through the running gateway; progress (may be nil)
// gets each progress event. Ending ctx stops the scan; what was found
// until then is returned with the error.
func (c *Client) Scan(ctx context.Context, line string, opts ScanOptions, progress func(Progress)) ([]Found, error) {
	q := opts.Query()
	q.Set("line", line)
	resp, err := c.send(ctx, http.MethodPost, "/scan?"+q.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	found, err := readScan(resp.Body, progress)
	if err != nil && !errors.Is(err, ErrScanFailed) && ctx.Err() != nil {
		return found, ctx.Err()
	}
	if err != nil {
		return found, fmt.Errorf("scan %s: %w", line, err)
	}
	return found, nil
}

// ErrScanFailed reports a scan that ended with an error on the gateway.
var ErrScanFailed = errors.New("localapi: scan failed")

// readScan reads a scan's answer stream: JSON lines of ScanEvent, the
// last one Done.
func readScan(r io.Reader, progress func(Progress)) ([]Found, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for n := 1; sc.Scan(); n++ {
		var e ScanEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("localapi: scan answer line %d: %w", n, err)
		}
		if e.Progress != nil && progress != nil {
			progress(*e.Progress)
		}
		if e.Done {
			if e.Error != "" {
				return e.Found, fmt.Errorf("%w: %s", ErrScanFailed, e.Error)
			}
			return e.Found, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("localapi: scan answer: %w", err)
	}
	return nil, errors.New("localapi: the scan answer ended before its result (did the gateway stop?)")
}

func (c *Client) send(ctx context.Context, method, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://townlink"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.dialError(err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, answerError(resp)
	}
	return resp, nil
}

func (c *Client) do(ctx context.Context, method, path string, dst any) error {
	resp, err := c.send(ctx, method, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(dst); err != nil {
		return fmt.Errorf("localapi: %s: %w", path, err)
	}
	return nil
}

// dialError says what to do when the socket does not answer.
func (c *Client) dialError(err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w on %s: is townlink running? systemctl status townlink", ErrNotRunning, c.path)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("localapi: %s: permission denied: run as root or as a member of the townlink group", c.path)
	}
	return fmt.Errorf("localapi: %s: %w", c.path, err)
}

// answerError turns an error answer back into an error that wraps the
// sentinel of its status.
func answerError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error string `json:"error"`
	}
	msg := string(b)
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	var sentinel error
	switch resp.StatusCode {
	case http.StatusBadRequest:
		sentinel = ErrBadRequest
	case http.StatusNotFound:
		sentinel = ErrUnknown
	case http.StatusNotImplemented:
		sentinel = ErrUnsupported
	case http.StatusBadGateway:
		sentinel = ErrDevice
	default:
		sentinel = ErrRefused
	}
	return &AnswerError{Code: resp.StatusCode, Msg: msg, err: sentinel}
}

// AnswerError is an error the gateway answered with.
type AnswerError struct {
	Code int    // HTTP status
	Msg  string // the gateway's message
	err  error
}

func (e *AnswerError) Error() string { return e.Msg }

// Unwrap is the sentinel of the status (ErrUnknown, ErrRefused, …).
func (e *AnswerError) Unwrap() error { return e.err }
