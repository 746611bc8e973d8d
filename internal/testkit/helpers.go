package testkit

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// Unhex decodes hex written with or without spaces ("68 AA 16"), as frames
// are written in tests and protocol texts; bad hex fails the test.
func Unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

// WaitFor polls cond until it holds, failing the test after ReplyTimeout
// with what was awaited. For state that has no event to wait on.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ReplyTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", ReplyTimeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
