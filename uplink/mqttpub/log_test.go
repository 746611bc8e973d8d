package mqttpub

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// The adapter is tested without installing it: paho's loggers are process
// globals and tests leave them alone.
func TestPahoLoggerAdapter(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, nil))
	pahoLogger{l, slog.LevelError}.Println("[client]", "Connect comms goroutine - error triggered", "EOF")
	pahoLogger{l, slog.LevelWarn}.Printf("[net] %s\n", "logic error")
	out := buf.String()
	for _, want := range []string{`level=ERROR msg="[client] Connect comms goroutine - error triggered EOF"`, `level=WARN msg="[net] logic error"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, `\n`) {
		t.Errorf("trailing newline kept:\n%s", out)
	}
}
