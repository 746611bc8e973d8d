package mqttpub

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// InstallPahoLogger routes paho's ERROR, CRITICAL and WARN loggers (package
// globals of github.com/eclipse/paho.mqtt.golang) to l, at levels Error,
// Error and Warn. DEBUG stays silent. A nil l restores paho's silent
// defaults.
//
// This changes process-global state: call it once, from the gateway's main,
// before starting clients. It is the only place in Townlink that touches
// paho's globals; libraries and tests leave them alone, and paho prints
// nothing by default. Clients log their own connection events through
// Options.Logger either way.
func InstallPahoLogger(l *slog.Logger) {
	if l == nil {
		mqtt.ERROR, mqtt.CRITICAL, mqtt.WARN = mqtt.NOOPLogger{}, mqtt.NOOPLogger{}, mqtt.NOOPLogger{}
		return
	}
	l = l.With("lib", "paho")
	mqtt.ERROR = pahoLogger{l, slog.LevelError}
	mqtt.CRITICAL = pahoLogger{l, slog.LevelError}
	mqtt.WARN = pahoLogger{l, slog.LevelWarn}
}

// pahoLogger adapts a slog.Logger to paho's Logger interface.
type pahoLogger struct {
	l     *slog.Logger
	level slog.Level
}

var _ mqtt.Logger = pahoLogger{}

func (p pahoLogger) Println(v ...any) {
	p.l.Log(context.Background(), p.level, strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}

func (p pahoLogger) Printf(format string, v ...any) {
	p.l.Log(context.Background(), p.level, strings.TrimSuffix(fmt.Sprintf(format, v...), "\n"))
}

// discard returns l, or a logger that drops everything when l is nil.
func discard(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
