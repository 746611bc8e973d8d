package certs

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrPerm reports a secret file that group or others may access.
var ErrPerm = errors.New("certs: secret file open to group or others")

// CheckSecret refuses the secret file path (a password or private key)
// when group or others have any permission on it; the error says the
// exact command that fixes it. A symbolic link is judged by its target.
func CheckSecret(path string) error {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("certs: %w (create it, mode 0600)", err)
	}
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if mode := st.Mode().Perm(); mode&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %04o; run: chmod 600 %s", ErrPerm, path, mode, shellQuote(path))
	}
	return nil
}

// ReadSecret reads a password file after CheckSecret, without its
// trailing line break.
func ReadSecret(path string) (string, error) {
	if err := CheckSecret(path); err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("certs: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+@%=:,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
