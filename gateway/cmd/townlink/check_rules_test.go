package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// townlink check refuses a rule with an unknown point, a bad expression
// or a window in the wrong format, at the rule's line, saying how to fix it.
func TestCheckRefusesBadRules(t *testing.T) {
	path := demoConfig(t)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := strings.Count(string(b), "\n") // the demo ends with its rules: list
	bad := `  - {id: bad-point, kind: threshold, severity: 2, message: m, scope: {device: hall-water}, point: flow_m4, above: 1}
  - {id: bad-expr, kind: expr, severity: 3, message: m, scope: {device: boiler-room-2}, expr: "pressure_kpa >"}
  - {id: bad-window, kind: window, severity: 2, message: m, scope: {device: hall-water}, point: flow_m3, above: 1, from: "2:00", to: "04:00"}
`
	if err := os.WriteFile(path, append(b, bad...), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run(t, "check", path)
	if code != 1 {
		t.Fatalf("check = %d, stderr %q", code, errOut)
	}
	for i, want := range []string{
		`unknown point "flow_m4": device hall-water does not report it (did you mean "flow_m3"?)`,
		`expression does not compile: unexpected token EOF`,
		`"2:00" is not a time of day (write it as "HH:MM"`,
	} {
		prefix := fmt.Sprintf("townlink.yaml:%d:", n+1+i)
		found := false
		for _, line := range strings.Split(errOut, "\n") {
			if strings.Contains(line, prefix) && strings.Contains(line, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("no %q at %s in:\n%s", want, prefix, errOut)
		}
	}
}

// townlink check lists the rules in effect: the demo's own, the default
// ones made for its recorder and kiosk, and one switched off.
func TestCheckListsDefaultRules(t *testing.T) {
	path := demoConfig(t)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, "  - {id: kiosk-wait, enabled: false}\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "check", path)
	if code != 0 {
		t.Fatalf("check = %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"rule cod-permit           threshold sev1 device:chem-plant-3-outlet\n",
		"rule sos                  event     sev1 kind:recorder (default;",
		"rule kiosk-wait           switched off (enabled: false)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}
