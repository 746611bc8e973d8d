package certs_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/townlink/townlink/gateway/certs"
)

func TestCheckSecretNamesTheChmodToRun(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		mode os.FileMode
		ok   bool
		cmd  string
	}{
		{"pw", 0o600, true, ""},
		{"ro.pw", 0o400, true, ""},
		{"group.pw", 0o640, false, "chmod 600 " + filepath.Join(dir, "group.pw")},
		{"world.key", 0o604, false, "chmod 600 " + filepath.Join(dir, "world.key")},
		{"my key's.pem", 0o660, false, "chmod 600 '" + filepath.Join(dir, `my key'\''s.pem`) + "'"},
	} {
		p := write(t, dir, c.name, []byte("s3cret\n"), c.mode, 0)
		err := certs.CheckSecret(p)
		if c.ok {
			if err != nil {
				t.Errorf("%s %04o: %v", c.name, c.mode, err)
			}
			continue
		}
		if !errors.Is(err, certs.ErrPerm) || !strings.HasSuffix(err.Error(), "run: "+c.cmd) {
			t.Errorf("%s %04o: %v, want ErrPerm ending in %q", c.name, c.mode, err, "run: "+c.cmd)
		}
	}
	if err := certs.CheckSecret(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "create it, mode 0600") {
		t.Errorf("missing file: %v", err)
	}
}

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	got, err := certs.ReadSecret(write(t, dir, "pw", []byte("s3cret \r\n"), 0o600, 0))
	if err != nil || got != "s3cret " {
		t.Fatalf("ReadSecret = %q, %v; want %q", got, err, "s3cret ")
	}
	if _, err := certs.ReadSecret(write(t, dir, "open", []byte("x"), 0o644, 0)); !errors.Is(err, certs.ErrPerm) {
		t.Fatalf("ReadSecret of a 0644 file = %v, want ErrPerm", err)
	}
}
