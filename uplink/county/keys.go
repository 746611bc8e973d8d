package county

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/townlink/townlink/uplink/wire"
)

// ErrKeys reports a keys file that does not parse.
var ErrKeys = errors.New("county: bad keys file")

// ParseKeys reads the gateways' registered evidence keys: one gateway per
// line, "<gateway id> ed25519:<base64 of 32 bytes>" (what `townlink id`
// prints); blank lines and lines starting with # are skipped. The id "*"
// sets the key of every gateway without its own (tests, one-key counties).
func ParseKeys(r io.Reader) (map[string]wire.Verifier, error) {
	keys := map[string]wire.Verifier{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("%w: line %d: want \"<gateway> ed25519:<key>\", got %d fields", ErrKeys, n, len(f))
		}
		gw := f[0]
		if gw == "*" {
			gw = ""
		} else if err := wire.ValidateGatewayID(gw); err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrKeys, n, err)
		}
		if _, dup := keys[gw]; dup {
			return nil, fmt.Errorf("%w: line %d: gateway %q listed twice", ErrKeys, n, f[0])
		}
		pub, err := wire.ParsePublicKey(f[1])
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrKeys, n, err)
		}
		keys[gw] = wire.Ed25519Verifier(pub)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeys, err)
	}
	return keys, nil
}
