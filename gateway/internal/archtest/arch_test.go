// Package archtest keeps the import rules of DESIGN.md true: every
// non-test import inside the module must be allowed by the table below, and
// the packages that promise "standard library only" (or, for uplink/wire,
// "standard library + CBOR") keep that promise.
package archtest

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/townlink/townlink"

// rule says which module packages a package (matched by prefix pattern)
// may import, and which outside modules.
type rule struct {
	pkg      string   // package path relative to the module; "x/..." matches x's sub-packages
	inModule []string // allowed module-internal imports (same patterns)
	external []string // allowed non-stdlib module prefixes; nil = any
}

var rules = []rule{
	{pkg: "hardware", inModule: nil, external: []string{}},
	{pkg: "hardware/serial", inModule: []string{"hardware"}, external: []string{"go.bug.st/serial"}},
	{pkg: "hardware/serialsim", inModule: []string{"hardware"}, external: []string{"golang.org/x/sys"}},
	{pkg: "hardware/gpio", inModule: []string{"hardware"}},
	// The simulator is apart from the real backend: standard library and hardware/gpio only.
	{pkg: "hardware/gpiosim", inModule: []string{"hardware", "hardware/gpio"}, external: []string{}},
	{pkg: "hardware/board", inModule: []string{"hardware"}, external: []string{}},
	{pkg: "drivers", inModule: nil, external: []string{}},
	{pkg: "drivers/serialio", inModule: []string{"drivers", "hardware"}, external: []string{}},
	{pkg: "drivers/...", inModule: []string{"drivers", "drivers/serialio", "drivers/internal/...", "hardware"}},
	{pkg: "firmware-sim/cmd/...", inModule: []string{"hardware", "hardware/...", "firmware-sim/..."}},
	{pkg: "firmware-sim/...", inModule: []string{"hardware", "hardware/serialsim", "hardware/gpio", "hardware/gpiosim", "firmware-sim/..."}},
	{pkg: "uplink/wire", inModule: nil, external: []string{"github.com/fxamacker/cbor/v2", "github.com/x448/float16"}},
	{pkg: "uplink/mqttpub/mosquittotest", inModule: nil},
	{pkg: "uplink/badgerq", inModule: []string{"uplink", "uplink/wire"}},
	{pkg: "uplink/mqttpub", inModule: []string{"uplink", "uplink/wire"}},
	{pkg: "uplink/queuetest", inModule: []string{"uplink", "uplink/wire"}},
	{pkg: "uplink/county", inModule: []string{"uplink/wire"}},
	{pkg: "uplink/county/pgstore", inModule: []string{"uplink/county", "uplink/wire"}, external: []string{"github.com/jackc/pgx/v5"}},
	{pkg: "uplink/county/pgstore/pgtest", inModule: nil, external: []string{}},
	{pkg: "uplink/county/natsin", inModule: []string{"uplink/county", "uplink/wire"}, external: []string{"github.com/nats-io/nats.go"}},
	{pkg: "uplink/county/mqttin", inModule: []string{"uplink/county", "uplink/wire"}, external: []string{}},
	{pkg: "uplink/county/natstest", inModule: nil, external: []string{"github.com/nats-io/nats.go"}},
	{pkg: "uplink/county/scale", inModule: []string{"uplink", "uplink/badgerq", "uplink/mqttpub", "uplink/wire", "uplink/county/...", "uplink/county/pgstore/pgtest"}},
	{pkg: "uplink/cmd/townlink-county", inModule: []string{"uplink/county", "uplink/county/pgstore", "uplink/county/natsin", "uplink/county/mqttin", "uplink/mqttpub", "uplink/wire"}},
	{pkg: "uplink/cmd/townlink-scale", inModule: []string{"uplink/county/scale"}},
	{pkg: "uplink", inModule: []string{"uplink/wire"}},
	// packaging/ holds the Debian package's files and their tests only.
	{pkg: "packaging", inModule: nil, external: []string{}},
	// Test helpers: no production package may import them (no rule allows it).
	{pkg: "internal/testkit", inModule: []string{"drivers", "hardware", "hardware/serial", "hardware/serialsim"}, external: []string{}},
	{pkg: "internal/testkit/mochitest", inModule: nil, external: []string{"github.com/mochi-mqtt/server/v2", "github.com/fxamacker/cbor/v2"}},
	{pkg: "gateway/...", inModule: []string{"hardware", "hardware/...", "drivers", "drivers/...", "uplink", "uplink/...", "gateway/..."}},
}

func match(pattern, pkg string) bool {
	if p, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == p || strings.HasPrefix(pkg, p+"/")
	}
	return pattern == pkg
}

func ruleFor(pkg string) *rule {
	for i := range rules {
		if match(rules[i].pkg, pkg) {
			return &rules[i]
		}
	}
	return nil
}

func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func TestImportsFollowDesign(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"/...")
	cmd.Dir = "../../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	checked := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		pkg := strings.TrimPrefix(f[0], module+"/")
		if f[0] == module {
			pkg = ""
		}
		r := ruleFor(pkg)
		if r == nil {
			t.Errorf("package %s is not in the import table of DESIGN.md (top-level folders: gateway, drivers, firmware-sim, uplink, hardware)", f[0])
			continue
		}
		checked++
		for _, imp := range f[1:] {
			switch {
			case strings.HasPrefix(imp, module+"/"):
				rel := strings.TrimPrefix(imp, module+"/")
				ok := false
				for _, a := range r.inModule {
					ok = ok || match(a, rel)
				}
				if !ok {
					t.Errorf("%s imports %s: not allowed by DESIGN.md (allowed: %v)", pkg, rel, r.inModule)
				}
			case isStd(imp):
			case r.external != nil:
				ok := false
				for _, a := range r.external {
					ok = ok || imp == a || strings.HasPrefix(imp, a+"/")
				}
				if !ok {
					t.Errorf("%s imports %s: this package promises standard library only (allowed outside modules: %v)", pkg, imp, r.external)
				}
			}
		}
	}
	if checked < 5 {
		t.Fatalf("only %d packages checked; go list output:\n%s", checked, out)
	}
}

func TestRulesMatch(t *testing.T) {
	if r := ruleFor("drivers/modbus"); r == nil || r.pkg != "drivers/..." {
		t.Fatalf("drivers/modbus → %+v", r)
	}
	if r := ruleFor("drivers"); r == nil || r.pkg != "drivers" {
		t.Fatalf("drivers → %+v", r)
	}
	if r := ruleFor("firmware-sim/modbussim"); r == nil || match("drivers", "drivers/modbus") {
		t.Fatalf("firmware-sim/modbussim → %+v", r)
	}
	if ruleFor("cmd/x") != nil {
		t.Fatal("cmd/x should have no rule")
	}
}
