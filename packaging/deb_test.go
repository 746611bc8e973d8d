package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// root is the repository root (this package's parent).
func root(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// run runs a command and returns its combined output; it fails the test on
// a non-zero exit.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// requireRootAndDpkg fails — it does not skip — where the test cannot run:
// installing a package needs root and dpkg. The project's machines and CI
// run the tests as root on Debian; elsewhere run `make test PKGS=...`
// without ./packaging, or as root in a Debian container.
func requireRootAndDpkg(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test installs the townlink Debian package with dpkg and needs root (the project's machines and CI run tests as root)")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "systemd-analyze"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: %v (scripts/deps.sh installs it)", tool, err)
		}
	}
	if exec.Command("dpkg-query", "-W", "-f=${Status}", "townlink").Run() == nil {
		out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", "townlink").Output()
		if !strings.Contains(string(out), "not-installed") {
			t.Fatalf("a townlink package is already on this machine (%s); the test would replace it: dpkg -P townlink first", out)
		}
	}
}

// buildDebs builds this machine's static binary and package twice, as
// versions 0.0.1 and 0.0.2, with the scripts `make dist` and `make deb` run.
func buildDebs(t *testing.T) (v1, v2 string) {
	t.Helper()
	arch := map[string]string{"amd64": "amd64", "arm64": "arm64"}[runtime.GOARCH]
	if arch == "" {
		t.Fatalf("no Debian package for GOARCH %s in this test", runtime.GOARCH)
	}
	dir := t.TempDir()
	for _, v := range []string{"0.0.1", "0.0.2"} {
		for _, script := range []string{"scripts/dist.sh", "scripts/deb.sh"} {
			cmd := exec.Command(script)
			cmd.Dir = root(t)
			cmd.Env = append(os.Environ(), "DIST="+dir, "TARGETS="+arch, "ARCHS="+arch, "VERSION="+v)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s VERSION=%s: %v\n%s", script, v, err, out)
			}
		}
	}
	return filepath.Join(dir, "townlink_0.0.1_"+arch+".deb"), filepath.Join(dir, "townlink_0.0.2_"+arch+".deb")
}

func exists(path string) bool { _, err := os.Lstat(path); return err == nil }

func status(t *testing.T) string {
	out, _ := exec.Command("dpkg-query", "-W", "-f=${Version} ${Status}", "townlink").Output()
	return string(out)
}

// TestDebInstallUpgradeRemovePurge installs the package with dpkg,
// upgrades it over a store and an edited config, removes and purges it,
// and has systemd-analyze verify the installed unit.
func TestDebInstallUpgradeRemovePurge(t *testing.T) {
	requireRootAndDpkg(t)
	v1, v2 := buildDebs(t)
	t.Cleanup(func() { _ = exec.Command("dpkg", "-P", "townlink").Run() })

	const (
		conf   = "/etc/townlink/townlink.yaml"
		unit   = "/usr/lib/systemd/system/townlink.service"
		state  = "/var/lib/townlink"
		wants  = "/etc/systemd/system/multi-user.target.wants/townlink.service"
		marker = state + "/queue/MARKER"
	)
	run(t, "dpkg", "-i", v1)
	if s := status(t); s != "0.0.1 install ok installed" {
		t.Fatalf("after dpkg -i: %q", s)
	}
	if out := run(t, "/usr/bin/townlink", "version"); !strings.Contains(out, "0.0.1") {
		t.Fatalf("townlink version = %q, want the package version 0.0.1 stamped in", out)
	}
	run(t, "getent", "passwd", "townlink")
	fi, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o750 {
		t.Errorf("%s mode %v, want 0750", state, fi.Mode().Perm())
	}
	uid := strings.Split(strings.TrimSpace(run(t, "getent", "passwd", "townlink")), ":")[2]
	if st := fi.Sys().(*syscall.Stat_t); strings.TrimSpace(uid) != itoa(st.Uid) {
		t.Errorf("%s owned by uid %d, want townlink (%s)", state, st.Uid, uid)
	}
	run(t, "/usr/bin/townlink", "check", conf)
	if !exists(wants) {
		t.Errorf("%s missing: the unit is not enabled on install", wants)
	}
	// systemd-analyze verify prints problems on stderr even when it exits 0.
	var stderr bytes.Buffer
	verify := exec.Command("systemd-analyze", "verify", unit)
	verify.Stderr = &stderr
	if err := verify.Run(); err != nil || strings.Contains(stderr.String(), "townlink.service") {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unit, err, stderr.String())
	}

	// A store and an edited config survive an upgrade.
	if err := os.MkdirAll(filepath.Dir(marker), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(marker, []byte("readings"), 0o600); err != nil {
		t.Fatal(err)
	}
	edited := append([]byte(nil), must(os.ReadFile(conf))...)
	edited = append(edited, "# edited on site\n"...)
	if err := os.WriteFile(conf, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "dpkg", "-i", v2)
	if s := status(t); s != "0.0.2 install ok installed" {
		t.Fatalf("after the upgrade: %q", s)
	}
	if !exists(marker) {
		t.Fatal("the upgrade lost the store")
	}
	if got := must(os.ReadFile(conf)); !bytes.Equal(got, edited) {
		t.Fatalf("the upgrade replaced the edited config:\n%s", got)
	}

	// Remove keeps data and config; purge deletes both.
	run(t, "dpkg", "-r", "townlink")
	if s := status(t); s != "0.0.2 deinstall ok config-files" {
		t.Fatalf("after dpkg -r: %q", s)
	}
	if exists("/usr/bin/townlink") || exists(unit) {
		t.Fatal("dpkg -r left the binary or the unit")
	}
	if !exists(marker) || !exists(conf) {
		t.Fatal("dpkg -r removed the store or the config; only purge may")
	}
	run(t, "dpkg", "-P", "townlink")
	for _, p := range []string{state, conf, "/etc/townlink", wants} {
		if exists(p) {
			t.Errorf("dpkg -P left %s", p)
		}
	}
	if s := status(t); strings.Contains(s, "installed") && !strings.Contains(s, "not-installed") {
		t.Errorf("after dpkg -P: %q", s)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func itoa(u uint32) string {
	var b [10]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			return string(b[i:])
		}
	}
}
