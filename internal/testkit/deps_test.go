package testkit

import (
	"strings"
	"testing"
)

func TestDepsListIsRead(t *testing.T) {
	deps, err := Deps()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"serial_asyncio": "python3-serial-asyncio", "pymodbus.server": "python3-pymodbus", "mosquitto": "mosquitto", "mbpoll": "mbpoll"}
	for _, d := range deps {
		if p, ok := want[d.What]; ok {
			if d.Package != p {
				t.Errorf("%s: package %q, want %q", d.What, d.Package, p)
			}
			delete(want, d.What)
		}
	}
	if len(want) > 0 {
		t.Errorf("scripts/deps.sh does not list %v", want)
	}
}

func TestHintNamesTheMissingModule(t *testing.T) {
	out := "Traceback (most recent call last):\n  File \"x.py\", line 91\nModuleNotFoundError: No module named 'serial_asyncio'\n"
	h := Hint(out, "py", "pymodbus.server")
	if !strings.Contains(h, "serial_asyncio") || !strings.Contains(h, "apt-get install python3-serial-asyncio") {
		t.Errorf("hint %q does not name the module and its package", h)
	}
	if h := Hint("", "py", "pymodbus.datastore"); !strings.Contains(h, "python3-pymodbus") {
		t.Errorf("hint %q does not name python3-pymodbus", h)
	}
	if h := Hint("", "py", "nosuchmodule"); !strings.Contains(h, "not in scripts/deps.sh") {
		t.Errorf("hint %q for an unlisted module", h)
	}
}
