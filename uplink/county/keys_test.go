package county_test

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"github.com/townlink/townlink/uplink/county"
	"github.com/townlink/townlink/uplink/wire"
)

func TestParseKeys(t *testing.T) {
	pub := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
	k := wire.FormatPublicKey(pub)
	keys, err := county.ParseKeys(strings.NewReader("# county 320583\n\ngw-1 " + k + "\n* " + k + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys["gw-1"] == nil || keys[""] == nil {
		t.Fatalf("%v", keys)
	}
	for _, bad := range []string{"gw-1", "GW! " + k, "gw-1 " + k + "\ngw-1 " + k, "gw-1 ed25519:AAAA", "gw-1 " + k + " extra"} {
		if _, err := county.ParseKeys(strings.NewReader(bad)); !errors.Is(err, county.ErrKeys) {
			t.Errorf("%q: err %v", bad, err)
		}
	}
}

func FuzzParseKeys(f *testing.F) {
	f.Add("gw-1 ed25519:O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=\n")
	f.Add("# x\n* ed25519:AAAA\n")
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := county.ParseKeys(strings.NewReader(s))
		if err != nil {
			if !errors.Is(err, county.ErrKeys) {
				t.Fatalf("error %v does not wrap ErrKeys", err)
			}
			return
		}
		for gw, v := range keys {
			if v == nil || (gw != "" && wire.ValidateGatewayID(gw) != nil) {
				t.Fatalf("accepted %q → %v", gw, v)
			}
		}
	})
}
