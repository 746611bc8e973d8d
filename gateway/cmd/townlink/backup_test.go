package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/townlink/townlink/gateway"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/uplink/badgerq"
)

func TestBackupAndRestoreCommands(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "townlink.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("gateway:\n  id: gw-1\n  county: \"320583\"\n  township: \"320583104\"\n  data_dir: %q\nuplink:\n  brokers: [\"tcp://127.0.0.1:1\"]\n", data)), 0o644)
	out := filepath.Join(dir, "gw-1.backup")

	if code, _, errOut := run(t, "backup", "-c", cfg, out); code != 1 || !strings.Contains(errOut, "no store") {
		t.Fatalf("backup without a store = %d, %q", code, errOut)
	}
	if code, _, errOut := run(t, "id", "-c", cfg); code != 0 {
		t.Fatalf("id = %d %s", code, errOut)
	}
	db, err := badgerq.Open(badgerq.Options{Dir: filepath.Join(data, "queue")})
	if err != nil {
		t.Fatal(err)
	}
	q, _ := db.Stream("telemetry", badgerq.StreamOptions{})
	for range 3 {
		q.Append(context.Background(), []byte("r"))
	}
	// While the store is open (as by a running gateway) backup says what to do.
	if code, _, errOut := run(t, "backup", "-c", cfg, out); code != 1 || !strings.Contains(errOut, "the gateway is running") {
		t.Fatalf("backup while the store is open = %d, %q", code, errOut)
	}
	db.Close()
	code, stdout, errOut := run(t, "backup", "-c", cfg, out)
	if code != 0 || !strings.Contains(stdout, "backup of gateway gw-1") {
		t.Fatalf("backup = %d, %q %q", code, stdout, errOut)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v, want mode 0600 (it holds the key)", fi, err)
	}
	if code, _, errOut := run(t, "restore", "-c", cfg, out); code != 1 || !strings.Contains(errOut, "--replace") {
		t.Fatalf("restore over the store = %d, %q", code, errOut)
	}
	code, stdout, errOut = run(t, "restore", "-c", cfg, "-replace", "-seen", "telemetry=5", "-margin", "100", out)
	if code != 0 || !strings.Contains(stdout, "telemetry  backup up to seq 3, platform may hold up to 5, next seq 107; seqs 4-105 reported lost") {
		t.Fatalf("restore = %d\n%s%s", code, stdout, errOut)
	}
	if code, _, errOut := run(t, "restore", "-c", cfg, "-seen", "telemetry=x", out); code != 2 || !strings.Contains(errOut, "not a number") {
		t.Fatalf("restore -seen telemetry=x = %d, %q", code, errOut)
	}
}

func TestParseSeenAndEvidence(t *testing.T) {
	m, err := parseSeen("telemetry=12, evidence=3")
	if err != nil || m["telemetry"] != 12 || m["evidence"] != 3 || len(m) != 2 {
		t.Fatalf("parseSeen = %v, %v", m, err)
	}
	for _, bad := range []string{"telemetry", "status=1", "telemetry=1,telemetry=2", "events=-1", "alarms=1e3"} {
		if _, err := parseSeen(bad); err == nil {
			t.Errorf("parseSeen(%q) accepted", bad)
		}
	}
	h := strings.Repeat("ab", 32)
	seq, hash, err := parseEvidenceHead("17:" + h)
	if err != nil || seq != 17 || len(hash) != 32 || hash[0] != 0xab {
		t.Fatalf("parseEvidenceHead = %d %x %v", seq, hash, err)
	}
	for _, bad := range []string{"17", "0:" + h, "17:" + h[:62], "17:zz" + h[2:], "x:" + h} {
		if _, _, err := parseEvidenceHead(bad); err == nil {
			t.Errorf("parseEvidenceHead(%q) accepted", bad)
		}
	}
}

func FuzzParseSeen(f *testing.F) {
	f.Add("telemetry=1,events=2")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseSeen(s)
		if err == nil && s != "" && len(m) == 0 {
			t.Fatalf("%q: no error and nothing parsed", s)
		}
	})
}

func FuzzParseEvidenceHead(f *testing.F) {
	f.Add("3:" + strings.Repeat("00", 32))
	f.Fuzz(func(t *testing.T, s string) {
		seq, h, err := parseEvidenceHead(s)
		if err == nil && s != "" && (seq == 0 || len(h) != 32) {
			t.Fatalf("%q: accepted as %d %x", s, seq, h)
		}
	})
}

// While the gateway runs (its store locked), backup takes the backup
// through the gateway's control socket.
func TestBackupThroughTheRunningGateway(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfgPath := filepath.Join(dir, "townlink.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("gateway:\n  id: gw-1\n  county: \"320583\"\n  township: \"320583104\"\n  data_dir: %q\nuplink:\n  brokers: [\"tcp://127.0.0.1:1\"]\n", data)), 0o644)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() { cancel(); <-done }()
	l, err := net.Listen("unix", filepath.Join(data, "townlink.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: g.BackupHandler()}
	go srv.Serve(l)
	defer srv.Close()

	out := filepath.Join(dir, "online.backup")
	code, stdout, errOut := run(t, "backup", "-c", cfgPath, out)
	if code != 0 || !strings.Contains(stdout, "backup of gateway gw-1") {
		t.Fatalf("backup while the gateway runs = %d\n%s%s", code, stdout, errOut)
	}
	b, err := os.ReadFile(out)
	if err != nil || !bytes.Contains(b, []byte("townlink-backup.json")) || !bytes.Contains(b, []byte("queue.badger")) {
		t.Fatalf("the backup file is not a backup (%d bytes, %v)", len(b), err)
	}
}
