package testkit

import "testing"

func TestSeedReplaysFromTheEnvironment(t *testing.T) {
	t.Setenv(SeedEnv, "18446744073709551615")
	if got := Seed(t); got != 1<<64-1 {
		t.Fatalf("Seed with %s set = %d", SeedEnv, got)
	}
	t.Setenv(SeedEnv, "")
	a := Seed(t)
	if a == 1<<64-1 || a == 0 {
		t.Fatalf("fresh seed %d", a)
	}
}
