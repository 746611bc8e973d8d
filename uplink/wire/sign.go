package wire

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// AlgEd25519 names Ed25519 (RFC 8032) in "alg": the signature is 64 bytes,
// the public key 32.
const AlgEd25519 = "ed25519"

// maxSigSize bounds a signature of an algorithm this package does not know.
const maxSigSize = 256

// Signer signs with the gateway's key. Alg names the algorithm as "alg"
// carries it ([a-z0-9-], at most 16 characters); Sign returns the
// signature of msg. The gateway's identity key implements it.
type Signer interface {
	Alg() string
	Sign(msg []byte) ([]byte, error)
}

// Verifier checks signatures made with one gateway's key: the public key
// the gateway registered with the county.
type Verifier interface {
	Alg() string
	Verify(msg, sig []byte) bool
}

// Ed25519Signer is a Signer over an Ed25519 private key.
type Ed25519Signer ed25519.PrivateKey

// Alg returns AlgEd25519.
func (Ed25519Signer) Alg() string { return AlgEd25519 }

// Sign returns the Ed25519 signature of msg.
func (k Ed25519Signer) Sign(msg []byte) ([]byte, error) {
	if len(k) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: ed25519 private key is %d bytes, want %d", ErrKey, len(k), ed25519.PrivateKeySize)
	}
	return ed25519.Sign(ed25519.PrivateKey(k), msg), nil
}

// Ed25519Verifier is a Verifier over an Ed25519 public key.
type Ed25519Verifier ed25519.PublicKey

// Alg returns AlgEd25519.
func (Ed25519Verifier) Alg() string { return AlgEd25519 }

// Verify reports whether sig is k's Ed25519 signature of msg.
func (k Ed25519Verifier) Verify(msg, sig []byte) bool {
	return len(k) == ed25519.PublicKeySize && len(sig) == ed25519.SignatureSize &&
		ed25519.Verify(ed25519.PublicKey(k), msg, sig)
}

// FormatPublicKey returns the printable form of an Ed25519 public key,
// "ed25519:" followed by its 32 bytes in standard base64: what a gateway
// registers with the county (townlink id prints it).
func FormatPublicKey(pub ed25519.PublicKey) string {
	return AlgEd25519 + ":" + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey parses the form FormatPublicKey writes. Errors wrap ErrKey.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	alg, b64, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || alg != AlgEd25519 {
		return nil, fmt.Errorf("%w: %q: want ed25519:<32 bytes in base64>", ErrKey, s)
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: bad base64: %v", ErrKey, s, err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: %q: %d bytes, want %d", ErrKey, s, len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// algProblem explains why alg is not a valid algorithm name, or returns "".
func algProblem(alg string) string {
	if alg == "" || len(alg) > 16 {
		return fmt.Sprintf("%q: want 1 to 16 characters [a-z0-9-]", alg)
	}
	for i := 0; i < len(alg); i++ {
		if c := alg[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Sprintf("%q: character %d not allowed; want [a-z0-9-]", alg, i)
		}
	}
	return ""
}

// checkSig checks a signature and its algorithm: both or neither, a valid
// algorithm name, 64 bytes for Ed25519, at most maxSigSize for others.
func checkSig(sigKey, algKey string, sig []byte, alg string) error {
	switch {
	case len(sig) == 0 && alg == "":
		return nil
	case len(sig) == 0:
		return schemaErr(sigKey, "missing; required with "+algKey)
	case alg == "":
		return schemaErr(algKey, "missing; required with "+sigKey)
	}
	if msg := algProblem(alg); msg != "" {
		return schemaErr(algKey, msg)
	}
	if alg == AlgEd25519 && len(sig) != ed25519.SignatureSize {
		return schemaErr(sigKey, fmt.Sprintf("%d bytes, want %d for ed25519", len(sig), ed25519.SignatureSize))
	}
	if len(sig) > maxSigSize {
		return schemaErr(sigKey, fmt.Sprintf("%d bytes, limit %d", len(sig), maxSigSize))
	}
	return nil
}

// headDomain starts every evidence-head message, so that a head signature
// can never pass for a record signature (which signs a bare 32-byte hash).
const headDomain = "townlink/v1 evidence-head\x00"

// HeadMessage returns what the gateway signs for its status's
// evidence_head_sig: "townlink/v1 evidence-head", a zero byte, the gateway
// id, a zero byte, seq as 8 bytes big-endian, and the 32-byte head (the
// hash of evidence record seq).
func HeadMessage(gw string, seq uint64, head []byte) []byte {
	m := make([]byte, 0, len(headDomain)+len(gw)+1+8+len(head))
	m = append(m, headDomain...)
	m = append(m, gw...)
	m = append(m, 0)
	m = binary.BigEndian.AppendUint64(m, seq)
	return append(m, head...)
}

// SignHead signs the evidence head of a status: it sets s.EvidenceHead to
// head and s.EvidenceHeadSig to the signature of HeadMessage(s.GW, seq,
// head); s.LastSeq["evidence"] must already be seq.
func SignHead(signer Signer, s *Status, seq uint64, head []byte) error {
	if s.LastSeq[StreamEvidence] != seq {
		return fmt.Errorf("%w: SignHead: last_seq[evidence] is %d, head is of seq %d", ErrSchema, s.LastSeq[StreamEvidence], seq)
	}
	if len(head) != HashSize {
		return fmt.Errorf("%w: SignHead: head is %d bytes, want %d", ErrSchema, len(head), HashSize)
	}
	sig, err := signer.Sign(HeadMessage(s.GW, seq, head))
	if err != nil {
		return fmt.Errorf("wire: SignHead: %w", err)
	}
	s.EvidenceHead = append([]byte(nil), head...)
	s.EvidenceHeadSig = sig
	return nil
}

var errNoSig = errors.New("not signed")

// verifyHead checks a status's evidence head signature with v.
func verifyHead(v Verifier, s *Status) error {
	if len(s.EvidenceHeadSig) == 0 {
		return errNoSig
	}
	if !v.Verify(HeadMessage(s.GW, s.LastSeq[StreamEvidence], s.EvidenceHead), s.EvidenceHeadSig) {
		return errors.New("bad signature")
	}
	return nil
}
