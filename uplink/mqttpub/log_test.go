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

// paho's ERROR and WARN lines (several per failed connect) go to Debug;
// CRITICAL stays at Error.
func TestPahoLoggersLevels(t *testing.T) {
	var buf bytes.Buffer
	errorL, critical, warn := pahoLoggers(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	errorL.Println("[client]", "Failed to connect to a broker")
	warn.Println("[client]", "failed to connect to broker, trying next")
	if buf.Len() != 0 {
		t.Fatalf("paho's connect errors reach the Info log:\n%s", buf.String())
	}
	critical.Println("[router]", "broken")
	if !strings.Contains(buf.String(), `level=ERROR msg="[router] broken" lib=paho`) {
		t.Fatalf("paho CRITICAL not at Error:\n%s", buf.String())
	}
	var dbg bytes.Buffer
	errorL, _, _ = pahoLoggers(slog.New(slog.NewTextHandler(&dbg, &slog.HandlerOptions{Level: slog.LevelDebug})))
	errorL.Println("[client]", "Failed to connect to a broker")
	if !strings.Contains(dbg.String(), `level=DEBUG msg="[client] Failed to connect to a broker"`) {
		t.Fatalf("paho ERROR not at Debug:\n%s", dbg.String())
	}
}

func TestOrdinal(t *testing.T) {
	for n, want := range map[int]string{1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 11: "11th", 12: "12th", 13: "13th", 21: "21st", 22: "22nd", 101: "101st", 111: "111th", 0: "0th"} {
		if got := Ordinal(n); got != want {
			t.Errorf("Ordinal(%d) = %q, want %q", n, got, want)
		}
	}
}
