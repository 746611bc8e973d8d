package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/internal/testkit/mochitest"
)

// Two recorders and a kiosk run a simulated hour against a real broker,
// each on its own client id and topic prefix.
func TestRun(t *testing.T) {
	b := mochitest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	err := run(ctx, []string{"-broker", b.Addr, "-speed", "1e7", "-duration", "1h",
		"-recorder", "zfy-001:a", "-recorder", "zfy-002:b", "-kiosk", "hall-kiosk-1:c"}, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	topics := map[string]int{} // client id and topic prefix → messages
	for _, m := range b.Messages() {
		topics[m.Client+" "+m.Topic[:strings.LastIndexByte(m.Topic, '/')]]++
	}
	for _, k := range []string{"zfy-001 field/zfy-001", "zfy-002 field/zfy-002", "hall-kiosk-1 field/hall-kiosk-1"} {
		if topics[k] < 10 {
			t.Errorf("%s: %d messages (%v)", k, topics[k], topics)
		}
	}
	if len(topics) != 3 {
		t.Errorf("topics %v", topics)
	}
	if err := run(ctx, []string{"-recorder", "nopassword"}, &stderr); err == nil {
		t.Error("bad -recorder accepted")
	}
}
