package wire

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports: the platform imports only this package, so it may depend on
// nothing but the standard library and fxamacker/cbor (and what that
// needs).
func TestImports(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go tool not on PATH: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-f", "{{join .Imports \"\\n\"}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, imp := range strings.Fields(string(out)) {
		if strings.Contains(strings.Split(imp, "/")[0], ".") && imp != "github.com/fxamacker/cbor/v2" {
			t.Errorf("imports %s: only the standard library and github.com/fxamacker/cbor/v2 are allowed", imp)
		}
	}
	out, err = exec.Command(goBin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := map[string]bool{"github.com/townlink/townlink/uplink/wire": true, "github.com/fxamacker/cbor/v2": true, "github.com/x448/float16": true}
	for _, dep := range strings.Fields(string(out)) {
		if !allowed[dep] {
			t.Errorf("depends on %s", dep)
		}
	}
}
