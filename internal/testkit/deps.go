// Package testkit holds helpers shared by the tests of several packages.
// Production code never imports it (gateway/internal/archtest checks).
package testkit

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Python is the interpreter the interop tests run: Debian's, where the
// python3-* packages install their modules.
const Python = "/usr/bin/python3"

// Dep is one system dependency from scripts/deps.sh, the one list of them.
type Dep struct {
	Kind    string // "bin" or "py"
	What    string // binary name or Python module
	Package string // Debian package that provides it
}

// Deps reads the dependency list from scripts/deps.sh at the module root.
func Deps() ([]Dep, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(root, "scripts", "deps.sh")
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var deps []Dep
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "DEPS=("):
			in = true
		case in && line == ")":
			in = false
		case in && strings.HasPrefix(line, `"`):
			fs := strings.Fields(strings.Trim(line, `"`))
			if len(fs) >= 3 {
				deps = append(deps, Dep{Kind: fs[0], What: fs[1], Package: fs[2]})
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(deps) == 0 {
		return nil, fmt.Errorf("%s: no DEPS=( … ) list found", path)
	}
	return deps, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// PackageFor names the Debian package that provides a binary or Python
// module (its top-level name is enough: "pymodbus.server" → pymodbus), or
// "" when scripts/deps.sh does not list it.
func PackageFor(kind, what string) string {
	deps, err := Deps()
	if err != nil {
		return ""
	}
	top, _, _ := strings.Cut(what, ".")
	for _, d := range deps {
		if d.Kind != kind {
			continue
		}
		if dt, _, _ := strings.Cut(d.What, "."); d.What == what || (kind == "py" && dt == top) {
			return d.Package
		}
	}
	return ""
}

// install is the hint for a missing dependency.
func install(kind, what string) string {
	if p := PackageFor(kind, what); p != "" {
		return fmt.Sprintf("apt-get install %s (or run scripts/deps.sh, which installs everything the tests use)", p)
	}
	return "it is not in scripts/deps.sh: add it there"
}

// RequirePython fails the test, naming the missing module and the package
// that provides it, unless Debian's python3 imports every module.
func RequirePython(t testing.TB, modules ...string) {
	t.Helper()
	if _, err := os.Stat(Python); err != nil {
		t.Fatalf("%s missing: %s", Python, install("bin", "python3"))
	}
	for _, m := range modules {
		out, err := exec.Command(Python, "-c", "import "+m).CombinedOutput()
		if err != nil {
			t.Fatalf("python module %s does not import (%v):\n%s\n%s", m, err, lastLines(string(out), 3), Hint(string(out), "py", m))
		}
	}
}

var noModule = regexp.MustCompile(`No module named '([A-Za-z0-9_.]+)'`)

// Hint turns a peer's error output into what to install: the module named
// by a ModuleNotFoundError when there is one, else what the caller tried.
func Hint(output, kind, what string) string {
	if m := noModule.FindStringSubmatch(output); m != nil {
		return fmt.Sprintf("missing python module %s: %s", m[1], install("py", m[1]))
	}
	return fmt.Sprintf("%s %s: %s", kind, what, install(kind, what))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
