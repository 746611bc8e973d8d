package testkit

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// ReadJSON decodes the JSON file at path (golden vectors in testdata/)
// into v, numbers in interface values as json.Number; a missing or
// malformed file, or trailing data, fails the test.
func ReadJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if dec.More() {
		t.Fatalf("%s: data after the JSON value", path)
	}
}
