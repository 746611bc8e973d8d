package certs

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"time"
)

// WarnDays is how many days before expiry Monitor starts warning.
const WarnDays = 30

// Condition is what a certificate's dates mean now.
type Condition uint8

// Conditions.
const (
	Valid         Condition = iota
	Expiring                // valid, WarnDays days or fewer left
	Expired                 // past NotAfter
	NotYetValid             // before NotBefore, by a synchronised clock
	ClockUnsynced           // before NotBefore by a clock that is not synchronised: the clock, not the certificate, is wrong
	Unreadable              // the file cannot be read or holds no certificate
)

func (c Condition) String() string {
	switch c {
	case Valid:
		return "valid"
	case Expiring:
		return "expiring"
	case Expired:
		return "expired"
	case NotYetValid:
		return "not_yet_valid"
	case ClockUnsynced:
		return "clock_unsynced"
	case Unreadable:
		return "unreadable"
	}
	return fmt.Sprintf("Condition(%d)", uint8(c))
}

// Report is one watched certificate file now. For a file with several
// certificates (a CA bundle) it describes the one that expires first.
type Report struct {
	Name      string // e.g. "uplink_client", "uplink_ca", "field"
	Path      string
	Subject   string
	NotBefore time.Time
	NotAfter  time.Time
	DaysLeft  int64 // whole days until NotAfter, rounded down; negative once expired
	Condition Condition
	Err       error // why the file is Unreadable
}

// Monitor watches certificate files. Safe for concurrent use.
type Monitor struct {
	now    func() time.Time
	synced func() bool
	log    *slog.Logger

	mu     sync.Mutex
	files  []*watched
	logged map[string]string // name → what was last logged
}

type watched struct {
	name, path string
	mod        time.Time
	cert       *x509.Certificate
	err        error
}

// NewMonitor returns a Monitor. synced tells whether the clock is
// synchronised (gateway/clock.Synced); now is the clock (nil: time.Now);
// log receives the warnings (nil discards).
func NewMonitor(now func() time.Time, synced func() bool, log *slog.Logger) *Monitor {
	if now == nil {
		now = time.Now
	}
	if synced == nil {
		synced = func() bool { return true }
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Monitor{now: now, synced: synced, log: log, logged: map[string]string{}}
}

// Add watches the certificate file path under name; "" is ignored.
func (m *Monitor) Add(name, path string) {
	if path == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files = append(m.files, &watched{name: name, path: path})
}

// Check re-reads files that changed and reports every watched file. It
// logs a warning when a certificate has WarnDays or fewer days left (and
// an error when it cannot be used), once for each new days-left figure.
func (m *Monitor) Check() []Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	now, synced := m.now(), m.synced()
	out := make([]Report, 0, len(m.files))
	for _, w := range m.files {
		w.load()
		r := w.report(now, synced)
		m.logReport(r)
		out = append(out, r)
	}
	return out
}

// Days is each readable certificate's days left, by name.
func (m *Monitor) Days() map[string]int64 {
	days := map[string]int64{}
	for _, r := range m.Check() {
		if r.Condition != Unreadable {
			days[r.Name] = r.DaysLeft
		}
	}
	return days
}

func (w *watched) load() {
	st, err := os.Stat(w.path)
	if err == nil && w.cert != nil && !st.ModTime().After(w.mod) {
		return
	}
	if err != nil {
		w.cert, w.err = nil, err
		return
	}
	w.mod = st.ModTime()
	w.cert, w.err = firstToExpire(w.path)
}

// firstToExpire reads a PEM file and returns its certificate that
// expires first.
func firstToExpire(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := parseFirstToExpire(b)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", path, err)
	}
	return c, nil
}

// parseFirstToExpire parses the CERTIFICATE blocks of PEM data (other
// blocks, such as a key, are skipped) and returns the one that expires
// first.
func parseFirstToExpire(b []byte) (*x509.Certificate, error) {
	var first *x509.Certificate
	for n := 1; ; n++ {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		if first == nil || c.NotAfter.Before(first.NotAfter) {
			first = c
		}
	}
	if first == nil {
		return nil, errNoCert
	}
	return first, nil
}

var errNoCert = errors.New("no PEM certificate in the file")

func (w *watched) report(now time.Time, synced bool) Report {
	r := Report{Name: w.name, Path: w.path}
	if w.cert == nil {
		r.Condition, r.Err = Unreadable, w.err
		return r
	}
	c := w.cert
	r.Subject, r.NotBefore, r.NotAfter = c.Subject.String(), c.NotBefore, c.NotAfter
	r.DaysLeft = int64(math.Floor(c.NotAfter.Sub(now).Hours() / 24))
	switch {
	case now.Before(c.NotBefore) && !synced:
		r.Condition = ClockUnsynced
	case now.Before(c.NotBefore):
		r.Condition = NotYetValid
	case now.After(c.NotAfter):
		r.Condition = Expired
	case r.DaysLeft <= WarnDays:
		r.Condition = Expiring
	}
	return r
}

// logReport logs r when it needs attention and was not logged so before.
func (m *Monitor) logReport(r Report) {
	key := fmt.Sprint(r.Condition, r.DaysLeft, r.Err)
	if r.Condition == Valid || m.logged[r.Name] == key {
		m.logged[r.Name] = key
		return
	}
	m.logged[r.Name] = key
	log := m.log.With("cert", r.Name, "path", r.Path)
	switch r.Condition {
	case Expiring:
		log.Warn("certificate expires soon: renew it", "days_left", r.DaysLeft, "not_after", r.NotAfter)
	case ClockUnsynced:
		log.Warn("certificate not valid yet by this clock, which is not synchronised: sync the clock (chrony, NTP); the certificate is fine",
			"not_before", r.NotBefore, "clock", m.now())
	case NotYetValid:
		log.Error("certificate not valid yet", "not_before", r.NotBefore)
	case Expired:
		log.Error("certificate expired: renew it", "not_after", r.NotAfter, "days_left", r.DaysLeft)
	case Unreadable:
		log.Error("certificate file unusable", "err", r.Err)
	}
}
