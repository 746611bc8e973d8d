package localapi

import (
	"errors"
	"net/url"
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

func FuzzParseScanOptions(f *testing.F) {
	f.Add("baud=auto&protocol=dlt645,modbus")
	f.Add("baud=2400")
	f.Add("baud=9600x&protocol=bacnet")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		o, err := ParseScanOptions(q)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("%q: error %v is not ErrBadRequest", raw, err)
			}
			return
		}
		// What was accepted survives the round trip.
		back, err := ParseScanOptions(o.Query())
		if err != nil || back.Baud != o.Baud || strings.Join(back.Protocols, ",") != strings.Join(o.Protocols, ",") {
			t.Fatalf("%q → %+v → %+v, %v", raw, o, back, err)
		}
	})
}

func TestParseScanOptions(t *testing.T) {
	for raw, want := range map[string]string{
		"baud=fast":        `baud="fast": want auto or a rate`,
		"protocol=bacnet":  `protocol="bacnet": want dlt645, cjt188, modbus`,
		"baud=0":           `baud="0"`,
		"protocol=modbus,": `protocol=""`,
	} {
		q, _ := url.ParseQuery(raw)
		if _, err := ParseScanOptions(q); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", raw, err, want)
		}
	}
}
