package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestLogsForTheJournal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	stream := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	env := func(k string) string { return map[string]string{"JOURNAL_STREAM": stream}[k] }
	log := slog.New(logHandler(f, slog.LevelDebug, false, env)).With("gw", "gw-1")
	log.Error("store does not answer", "err", "io")
	log.Warn("broker unreachable (2nd try in a row), next try in 4s")
	log.Info("gateway running")
	log.Debug("poll")
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`<3>level=ERROR msg="store does not answer" gw=gw-1 err=io`,
		`<4>level=WARN msg="broker unreachable (2nd try in a row), next try in 4s" gw=gw-1`,
		`<6>level=INFO msg="gateway running" gw=gw-1`,
		`<7>level=DEBUG msg=poll gw=gw-1`,
	}
	if got := strings.Split(strings.TrimSpace(string(b)), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("journal lines:\n%s\nwant:\n%s", b, strings.Join(want, "\n"))
	}
}

func TestLogsOutsideTheJournal(t *testing.T) {
	var buf bytes.Buffer
	// JOURNAL_STREAM inherited from a parent whose stderr was the journal:
	// this stderr is not it, so lines keep their timestamps.
	env := func(k string) string { return map[string]string{"JOURNAL_STREAM": "8:12345"}[k] }
	slog.New(logHandler(&buf, slog.LevelInfo, false, env)).Info("gateway running")
	if !strings.HasPrefix(buf.String(), "time=") || strings.HasPrefix(buf.String(), "<") {
		t.Fatalf("line %q: want time= first and no priority prefix", buf.String())
	}
	buf.Reset()
	slog.New(logHandler(&buf, slog.LevelInfo, true, env)).Info("gateway running")
	if !strings.HasPrefix(buf.String(), `{"time":`) {
		t.Fatalf("-json line %q", buf.String())
	}
}
