package county_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The gateway that ships to townships links neither NATS nor PostgreSQL:
// the county side is a binary of its own.
func TestGatewayBinaryLinksNoCountyParts(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/townlink/townlink/gateway/cmd/townlink").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 20 {
		t.Fatalf("go list -deps gave %d packages", len(deps))
	}
	for _, d := range deps {
		for _, banned := range []string{"github.com/nats-io/", "github.com/jackc/", "github.com/townlink/townlink/uplink/county"} {
			if strings.HasPrefix(d, banned) {
				t.Errorf("the gateway binary links %s", d)
			}
		}
	}
}
