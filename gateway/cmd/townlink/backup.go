package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/townlink/townlink/gateway"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/uplink/wire"
)

func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("backup", "[-c CONFIG] FILE", `Back up the gateway's store, pulse counters and identity key to FILE (a tar
archive; it holds the private key: keep it as secret as the key). While the
gateway runs its store is locked: the backup is then taken by the gateway
itself, through its control socket (POST /backup).`, stderr)
	path := fs.String("c", "/etc/townlink/townlink.yaml", "config `file`")
	sock := fs.String("socket", "", "the running gateway's control `socket` (default gateway.socket)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: townlink backup [-c CONFIG] FILE", errUsage)
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	out := fs.Arg(0)
	tmp := out + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = gateway.BackupStopped(cfg, f)
	if err != nil && strings.Contains(err.Error(), "Cannot acquire directory lock") {
		// The gateway runs: it takes the backup itself.
		if *sock == "" {
			*sock = cfg.Gateway.Socket
		}
		if _, serr := f.Seek(0, io.SeekStart); serr == nil && f.Truncate(0) == nil {
			if oerr := backupOnline(ctx, *sock, f); oerr != nil {
				err = fmt.Errorf("the gateway is running and its store is locked; the backup through its control socket failed too: %w\n(or stop it: systemctl stop townlink, back up, start it again)", oerr)
			} else {
				err = nil
			}
		}
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	fi, _ := os.Stat(out)
	fmt.Fprintf(stdout, "%s: backup of gateway %s (%d bytes)\n", out, cfg.Gateway.ID, fi.Size())
	return nil
}

func cmdRestore(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("restore", "[-c CONFIG] [-seen S=N,...] [-evidence SEQ:HASH] [-replace] FILE", `Restore a backup into the gateway's data directory (the gateway stopped).
The platform may already hold records the gateway sent after the backup, so
every stream moves past them: telemetry, events and alarms skip to the
highest seq the platform may hold plus -margin, with a gap record (reason
"restored") for the skipped seqs; evidence continues the platform's chain
from its last evidence record (-evidence). Take the figures from the
platform's audit or from the gateway's last status on the county broker
(last_seq, evidence_head).`, stderr)
	path := fs.String("c", "/etc/townlink/townlink.yaml", "config `file`")
	seen := fs.String("seen", "", "highest seq the platform may hold per stream: `telemetry=N,events=N,alarms=N,evidence=N`")
	evidence := fs.String("evidence", "", "the platform's last evidence record: `SEQ:HASH` (hash in hex, 64 digits)")
	margin := fs.Uint64("margin", gateway.DefaultRestoreMargin, "seqs skipped past the highest known on telemetry, events and alarms")
	replace := fs.Bool("replace", false, "move an existing store aside instead of refusing (its positions count as seen)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: townlink restore [flags] FILE", errUsage)
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	o := gateway.RestoreOptions{Margin: *margin, Replace: *replace}
	if o.Seen, err = parseSeen(*seen); err != nil {
		return fmt.Errorf("%w: -seen: %v", errUsage, err)
	}
	if o.EvidenceSeq, o.EvidenceHash, err = parseEvidenceHead(*evidence); err != nil {
		return fmt.Errorf("%w: -evidence: %v", errUsage, err)
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	rep, err := gateway.Restore(cfg, f, o)
	if err != nil {
		return err
	}
	if err := matchOwner(cfg.Gateway.DataDir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored gateway %s into %s\n", cfg.Gateway.ID, cfg.Gateway.DataDir)
	names := make([]string, 0, len(rep))
	for n := range rep {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := rep[n]
		line := fmt.Sprintf("  %-10s backup up to seq %d, platform may hold up to %d, next seq %d", n, r.Backup, r.Known, r.Next)
		if r.GapTo > 0 {
			line += fmt.Sprintf("; seqs %d-%d reported lost (gap record)", r.GapFrom, r.GapTo)
		}
		fmt.Fprintln(stdout, line)
	}
	return nil
}

// parseSeen parses "telemetry=120,events=30": record streams and seqs.
func parseSeen(s string) (map[string]uint64, error) {
	out := map[string]uint64{}
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, num, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("%q: want STREAM=SEQ", part)
		}
		if !wire.IsRecordStream(name) {
			return nil, fmt.Errorf("%q: %q is not a record stream (telemetry, events, alarms, evidence)", part, name)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("stream %s given twice", name)
		}
		n, err := strconv.ParseUint(num, 10, 63)
		if err != nil {
			return nil, fmt.Errorf("%q: the seq is not a number", part)
		}
		out[name] = n
	}
	return out, nil
}

// parseEvidenceHead parses "SEQ:HASH" (hash in hex).
func parseEvidenceHead(s string) (uint64, []byte, error) {
	if s == "" {
		return 0, nil, nil
	}
	num, hx, ok := strings.Cut(s, ":")
	if !ok {
		return 0, nil, fmt.Errorf("%q: want SEQ:HASH", s)
	}
	seq, err := strconv.ParseUint(num, 10, 63)
	if err != nil || seq == 0 {
		return 0, nil, fmt.Errorf("%q: the seq is not a positive number", num)
	}
	h, err := hex.DecodeString(hx)
	if err != nil || len(h) != wire.HashSize {
		return 0, nil, fmt.Errorf("the hash must be %d hex digits (%d bytes), got %q", 2*wire.HashSize, wire.HashSize, hx)
	}
	return seq, h, nil
}

// matchOwner gives everything under dir the owner of dir itself, so that
// a restore run as root leaves files the gateway's user (townlink) can
// open. Not root: nothing to do.
func matchOwner(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(st.Uid), int(st.Gid))
	})
}

// backupOnline asks the running gateway for a backup on its control
// socket (POST /backup, Gateway.BackupHandler) and writes it to w.
func backupOnline(ctx context.Context, sock string, w io.Writer) error {
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://townlink/backup", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s: POST /backup: %s: %s", sock, resp.Status, strings.TrimSpace(string(msg)))
	}
	n, err := io.Copy(w, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("%s: backup cut off after %d of %d bytes", sock, n, resp.ContentLength)
	}
	return err
}
