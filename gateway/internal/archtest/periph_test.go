package archtest

import (
	"bytes"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const periphHost = "periph.io/x/host/v3"

// Only hardware/gpio talks to periph's host drivers, and only in one file
// (chardev.go, the Linux backend): the simulator (hardware/gpiosim) and
// everything above stay portable.
func TestPeriphHostInOneFile(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{.Dir}}|{{join .GoFiles \" \"}}", module+"/...")
	cmd.Dir = "../../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var files []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, "|", 3)
		if len(f) != 3 {
			t.Fatalf("go list line %q", line)
		}
		for _, name := range strings.Fields(f[2]) {
			path := filepath.Join(f[1], name)
			af, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if p == periphHost || strings.HasPrefix(p, periphHost+"/") {
					files = append(files, strings.TrimPrefix(f[0], module+"/")+"/"+name)
					break
				}
			}
		}
	}
	if len(files) != 1 || files[0] != "hardware/gpio/chardev.go" {
		t.Fatalf("files importing %s: %v, want only hardware/gpio/chardev.go", periphHost, files)
	}
}
