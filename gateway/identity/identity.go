// Package identity is the gateway's signing key: an Ed25519 key generated
// at first start and kept in the data directory, which signs the evidence
// chain and the evidence head of the status (see uplink/wire: Signer,
// Sealer, SignHead, and docs/contract.md). The county registers its public
// key (townlink id prints it) and verifies with it.
//
// The key file is PKCS#8 in PEM ("PRIVATE KEY"), readable by openssl. It
// must be readable by its owner only: Load refuses a key file that group
// or others may read, and says which chmod fixes it.
package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/townlink/townlink/uplink/wire"
)

// KeyFile is the name of the key file in the identity directory.
const KeyFile = "ed25519.key"

// Errors.
var (
	// ErrPermissions: the key file is readable or writable by group or
	// others.
	ErrPermissions = errors.New("identity: key file permissions too open")
	// ErrKeyFile: the key file is not a PKCS#8 Ed25519 private key.
	ErrKeyFile = errors.New("identity: bad key file")
)

// Key is the gateway's Ed25519 identity. It implements wire.Signer.
type Key struct {
	priv ed25519.PrivateKey
	path string
}

var _ wire.Signer = (*Key)(nil)

// Load returns the key in dir, generating it first if dir holds none: dir
// is created with mode 0700, the key file with 0600 (written to a
// temporary file, synced, then linked into place, so a crash never leaves
// half a key and two starts racing end with one key).
func Load(dir string) (*Key, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	path := filepath.Join(dir, KeyFile)
	k, err := read(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if err := generate(dir, path); err != nil {
		return nil, err
	}
	return read(path)
}

// read loads the key at path, refusing loose permissions.
func read(path string) (*Key, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o, others than its owner may read it; run: chmod 600 %s",
			ErrPermissions, path, fi.Mode().Perm(), path)
	}
	p, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	blk, rest := pem.Decode(p)
	if blk == nil || blk.Type != "PRIVATE KEY" || len(rest) != 0 {
		return nil, fmt.Errorf("%w: %s: want one PEM block \"PRIVATE KEY\" (PKCS#8) and nothing else", ErrKeyFile, path)
	}
	raw, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrKeyFile, path, err)
	}
	priv, ok := raw.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s: a %T, want an Ed25519 key", ErrKeyFile, path, raw)
	}
	return &Key{priv: priv, path: path}, nil
}

// generate writes a new key to path unless one appears there first.
func generate(dir, path string) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("identity: generating a key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".key-*")
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	defer os.Remove(tmp.Name())
	werr := tmp.Chmod(0o600)
	if werr == nil {
		werr = pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("identity: writing %s: %w", path, werr)
	}
	// Link fails if another start won the race: its key stays.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("identity: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("identity: syncing %s: %w", dir, err)
	}
	return nil
}

// Alg returns wire.AlgEd25519.
func (k *Key) Alg() string { return wire.AlgEd25519 }

// Sign returns the Ed25519 signature of msg.
func (k *Key) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv, msg), nil }

// Public returns the public key.
func (k *Key) Public() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

// String returns the printable public key, "ed25519:<base64>": what the
// county registers.
func (k *Key) String() string { return wire.FormatPublicKey(k.Public()) }

// Path returns the key file's path.
func (k *Key) Path() string { return k.path }

// Verifier returns the wire.Verifier of the public key.
func (k *Key) Verifier() wire.Verifier { return wire.Ed25519Verifier(k.Public()) }

// ParsePublic parses a printable public key ("ed25519:<base64>", as
// String prints it) into a wire.Verifier.
func ParsePublic(s string) (wire.Verifier, error) {
	pub, err := wire.ParsePublicKey(s)
	if err != nil {
		return nil, err
	}
	return wire.Ed25519Verifier(pub), nil
}

// Dir is the identity directory inside the gateway's data directory
// (config gateway.data_dir): the gateway and townlink id both use it.
func Dir(dataDir string) string { return filepath.Join(dataDir, "identity") }
