package identity

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/townlink/townlink/uplink/wire"
)

func TestLoadGeneratesThenLoads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "identity")
	k, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, KeyFile): 0o600} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s: mode %v, want %04o (%v)", path, fi.Mode().Perm(), want, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("identity dir holds %d entries, want the key only", len(entries))
	}
	k2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k.String() != k2.String() || !strings.HasPrefix(k.String(), "ed25519:") {
		t.Fatalf("second Load gave another key: %s %s", k, k2)
	}
	// The file is standard PKCS#8.
	p, _ := os.ReadFile(k.Path())
	blk, _ := pem.Decode(p)
	if _, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err != nil {
		t.Fatal(err)
	}
	// It signs what its printed public key verifies.
	v, err := ParsePublic(k.String())
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := k.Sign([]byte("hash"))
	if !v.Verify([]byte("hash"), sig) || v.Verify([]byte("hasH"), sig) || k.Alg() != wire.AlgEd25519 {
		t.Fatal("signature does not verify with the printed key")
	}
}

func TestLoadRefusesOpenPermissions(t *testing.T) {
	dir := t.TempDir()
	k, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660} {
		if err := os.Chmod(k.Path(), mode); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir)
		if !errors.Is(err, ErrPermissions) || !strings.Contains(err.Error(), "chmod 600 "+k.Path()) {
			t.Fatalf("mode %04o: %v", mode, err)
		}
	}
	os.Chmod(k.Path(), 0o600)
	if _, err := Load(dir); err != nil {
		t.Fatal(err)
	}
}

func TestLoadRefusesBadKeyFiles(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":    "not a key",
		"other type": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		"bad der":    "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir); !errors.Is(err, ErrKeyFile) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Two starts racing for the first key end with one key.
func TestLoadRace(t *testing.T) {
	dir := t.TempDir()
	keys := make([]string, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := Load(dir)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = k.String()
		}()
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if k != keys[0] {
			t.Fatalf("racing Loads returned different keys: %v", keys)
		}
	}
}

func TestParsePublic(t *testing.T) {
	for _, s := range []string{"", "ed25519", "ed25519:", "rsa:AAAA", "ed25519:***", "ed25519:AAAA"} {
		if _, err := ParsePublic(s); !errors.Is(err, wire.ErrKey) {
			t.Errorf("%q: %v", s, err)
		}
	}
}

// FuzzParsePublic: never panics; what parses prints back the same.
func FuzzParsePublic(f *testing.F) {
	f.Add("ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
	f.Add("ed25519:AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		pub, err := wire.ParsePublicKey(s)
		if err != nil {
			if !errors.Is(err, wire.ErrKey) {
				t.Fatal(err)
			}
			return
		}
		if back, err := wire.ParsePublicKey(wire.FormatPublicKey(pub)); err != nil || string(back) != string(pub) {
			t.Fatalf("%q: round trip %v", s, err)
		}
	})
}
