package board

import "testing"

// townsim's simulated inputs pass through every profile as they are
// written, so a demo config can say pin: "sim:/abs/.demo/gpio/DI1".
func TestSimulatedLinesPassThrough(t *testing.T) {
	for _, name := range Names() {
		p, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, pin := range []string{"sim:/work/main/.demo/gpio/DI1", "unix:/run/townsim/DI2", "sim:rel/DI1"} {
			if got, err := p.GPIO(pin); got != pin || err != nil {
				t.Errorf("board %s: GPIO(%q) = %q, %v; want it unchanged", name, pin, got, err)
			}
		}
	}
}
