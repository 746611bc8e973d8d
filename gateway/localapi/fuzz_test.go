package localapi

import (
	"strings"
	"testing"
)

// readScan takes whatever the socket sends: garbage is an error naming
// the line, never a panic or a result made up.
func FuzzReadScan(f *testing.F) {
	f.Add(`{"progress":{"done":1,"total":3}}` + "\n" + `{"found":[{"protocol":"dlt645","address":"1"}],"done":true}` + "\n")
	f.Add(`{"done":true,"error":"line closed"}` + "\n")
	f.Add("{\"progress\":\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		found, err := readScan(strings.NewReader(s), func(Progress) {})
		if err == nil && !strings.Contains(s, `"done"`) {
			t.Fatalf("a stream without a done event succeeded: %q → %v", s, found)
		}
	})
}

func TestReadScanErrors(t *testing.T) {
	for in, want := range map[string]string{
		"{\"progress\":{}}\nnot json\n":   "scan answer line 2",
		"{\"progress\":{}}\n":             "ended before its result",
		"{\"done\":true,\"error\":\"x\"}": "scan failed: x",
	} {
		if _, err := readScan(strings.NewReader(in), nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}
