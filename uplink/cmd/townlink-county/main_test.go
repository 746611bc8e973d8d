package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestIngestFlagsRefusedBeforeAnyIO(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "usage"},
		{[]string{"serve"}, "unknown command"},
		{[]string{"ingest"}, "-pg is required"},
		{[]string{"ingest", "-pg", "x", "-source", "kafka"}, "want nats or mqtt"},
		{[]string{"ingest", "-pg", "x", "-mqtt", "tcp://b:1883"}, "needs -nats"},
		{[]string{"ingest", "-pg", "x", "-nats", "nats://n:4222"}, "-mqtt is required"},
		{[]string{"ingest", "-pg", "x", "-nats", "n", "-mqtt", "m", "-ack", "never"}, "want platform or broker"},
		{[]string{"ingest", "-pg", "x", "-nats", "n", "-mqtt", "m", "-log", "loud"}, "-log"},
		{[]string{"ingest", "-pg", "x", "-nats", "n", "-mqtt", "m", "-keys", "/nonexistent/keys"}, "-keys"},
		{[]string{"report"}, "-pg is required"},
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), c.args, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want %q", c.args, err, c.want)
		}
	}
}
