package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
)

// logHandler builds the gateway's log handler. Under systemd, when stderr
// is the journal (JOURNAL_STREAM names it, see systemd.exec(5)), lines
// carry no timestamp (journald adds its own) and start with the syslog
// priority prefix journald reads ("<3>level=ERROR msg=..."), so
// `journalctl -u townlink -p warning` filters by level. Otherwise text (or
// JSON) lines with time= first, as before.
func logHandler(stderr io.Writer, level slog.Leveler, json bool, getenv func(string) string) slog.Handler {
	opts := &slog.HandlerOptions{Level: level}
	if json {
		return slog.NewJSONHandler(stderr, opts)
	}
	if !isJournal(stderr, getenv("JOURNAL_STREAM")) {
		return slog.NewTextHandler(stderr, opts)
	}
	opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	return slog.NewTextHandler(&priorityWriter{w: stderr}, opts)
}

// isJournal reports whether w is the stream JOURNAL_STREAM ("dev:inode")
// names.
func isJournal(w io.Writer, stream string) bool {
	if stream == "" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino) == stream
}

// priorityWriter prefixes each line of a text handler without timestamps
// ("level=WARN msg=...") with its syslog priority ("<4>").
type priorityWriter struct{ w io.Writer }

var priorities = []struct {
	level  []byte
	prefix string
}{
	{[]byte("level=ERROR"), "<3>"},
	{[]byte("level=WARN"), "<4>"},
	{[]byte("level=INFO"), "<6>"},
	{[]byte("level=DEBUG"), "<7>"},
}

func (p *priorityWriter) Write(b []byte) (int, error) {
	prefix := "<6>"
	for _, pr := range priorities {
		if bytes.HasPrefix(b, pr.level) {
			prefix = pr.prefix
			break
		}
	}
	if _, err := p.w.Write(append([]byte(prefix), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}
