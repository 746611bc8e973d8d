package testkit

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// SeedEnv names the environment variable that replays a randomised test:
// TOWNLINK_SEED=123 go test -run '^TestX$' ./pkg.
const SeedEnv = "TOWNLINK_SEED"

// Seed returns the seed of a randomised test: SeedEnv's value when it is
// set (to replay a failure), else a fresh one from the clock. It logs the
// seed and the command that replays it, so every failure of a random test
// can be reproduced.
func Seed(t testing.TB) uint64 {
	t.Helper()
	if s := os.Getenv(SeedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q is not a seed (a decimal uint64): %v", SeedEnv, s, err)
		}
		t.Logf("seed %d, from %s", v, SeedEnv)
		return v
	}
	v := uint64(time.Now().UnixNano())
	t.Logf("seed %d (replay: %s=%d go test -run '^%s$')", v, SeedEnv, v, t.Name())
	return v
}
