package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckReportsWhatRunWouldRefuse: a config that parses but names a
// missing password file, an unreadable CA, a client key open to others, a
// serial port that does not exist and a listen address in use — check
// reports each at its file:line:col with what to do, and fails.
func TestCheckReportsWhatRunWouldRefuse(t *testing.T) {
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, []byte("not a certificate\n"), 0o644)
	cert := filepath.Join(dir, "client.pem")
	os.WriteFile(cert, []byte("not a certificate\n"), 0o644)
	key := filepath.Join(dir, "client.key")
	os.WriteFile(key, []byte("not a key\n"), 0o644)
	cfg := fmt.Sprintf(`gateway:
  id: gw-1
  county: "320583"
  township: "320583104"
  data_dir: %q
  metrics_listen: %q
uplink:
  brokers: ["tls://county.example:8883"]
  ca: %q
  cert: %q
  key: %q
  username: gw-1
  password_file: %q
lines:
  - name: RS485-1
    port: %q
`, dir, busy.Addr().String(), ca, cert, key, filepath.Join(dir, "missing.pw"), filepath.Join(dir, "ttyNOPE"))
	path := filepath.Join(dir, "townlink.yaml")
	os.WriteFile(path, []byte(cfg), 0o644)
	code, out, errOut := run(t, "check", "-strict", path)
	if code != 1 {
		t.Fatalf("check = %d, want 1\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		path + ":6:19: gateway.metrics_listen: ", "cannot listen on " + busy.Addr().String(),
		path + ":11:8: uplink.key: ", "chmod 600",
		path + ":13:18: uplink.password_file: ", "missing.pw", "create it, mode 0600",
		path + ":16:11: lines[0].port: ", "ttyNOPE does not exist", "townlink ports",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("check's report lacks %q:\n%s", want, errOut)
		}
	}
	// Key permissions fixed: the unparseable certificates are the problem now.
	os.Chmod(key, 0o600)
	_, _, errOut = run(t, "check", path)
	if !strings.Contains(errOut, "uplink.") || !strings.Contains(errOut, "ca.pem") && !strings.Contains(errOut, "client.pem") {
		t.Errorf("check does not report the unparseable certificate files:\n%s", errOut)
	}
}

// A serial port that is not there now does not stop the gateway (its line
// owner keeps retrying: an adapter plugged in later is picked up), so check
// warns about it and passes — unless -strict.
func TestCheckWarnsOfAMissingPort(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "townlink.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf(`gateway: {id: gw-1, county: "320583", township: "320583104", data_dir: %q}
uplink: {brokers: ["tcp://127.0.0.1:1883"]}
lines: [{name: RS485-1, port: %q, baud: 9600}]
`, dir, filepath.Join(dir, "ttyNOPE"))), 0o644)
	code, out, errOut := run(t, "check", path)
	if code != 0 || !strings.Contains(errOut, "warning: "+path+":3:") || !strings.Contains(errOut, "ttyNOPE does not exist") || !strings.Contains(out, "ok") {
		t.Fatalf("check = %d\n%s%s", code, out, errOut)
	}
	if code, _, _ := run(t, "check", "-strict", path); code != 1 {
		t.Errorf("check -strict = %d, want 1", code)
	}
}

// The packaged config (packaging/townlink.yaml) passes check as shipped,
// so a box installed and started without editing it would join the county
// as gw-change-me — and knock every other such box off the broker. check
// warns at the id's line; -strict (the install check on site) refuses it.
func TestCheckWarnsOfThePackagedPlaceholderID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "townlink.yaml")
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "packaging", "townlink.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "check", path)
	if code != 0 || !strings.Contains(out, "ok") || !strings.Contains(errOut, "warning: "+path+":10:7: gateway.id: \"gw-change-me\" is the packaged config's placeholder") {
		t.Fatalf("check = %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := run(t, "check", "-strict", path); code != 1 || !strings.Contains(errOut, "gateway.id") {
		t.Errorf("check -strict = %d, want 1 naming gateway.id\n%s", code, errOut)
	}
}
