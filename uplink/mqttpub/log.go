package mqttpub

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// InstallPahoLogger routes paho's loggers (package globals of
// github.com/eclipse/paho.mqtt.golang) to l: CRITICAL at Error, ERROR and
// WARN at Debug. paho's ERROR and WARN lines are all about connections
// and the network — two or more per failed connect attempt, forever while
// the county broker is down — and the Client already reports each of
// those events once per back-off step through Options.Logger, with a
// repeat count. DEBUG stays silent. A nil l restores paho's silent
// defaults.
//
// This changes process-global state: call it once, from the gateway's main,
// before starting clients. It is the only place in Townlink that touches
// paho's globals; libraries and tests leave them alone, and paho prints
// nothing by default.
func InstallPahoLogger(l *slog.Logger) {
	if l == nil {
		mqtt.ERROR, mqtt.CRITICAL, mqtt.WARN = mqtt.NOOPLogger{}, mqtt.NOOPLogger{}, mqtt.NOOPLogger{}
		return
	}
	mqtt.ERROR, mqtt.CRITICAL, mqtt.WARN = pahoLoggers(l)
}

// pahoLoggers returns the ERROR, CRITICAL and WARN loggers InstallPahoLogger
// installs.
func pahoLoggers(l *slog.Logger) (errorL, critical, warn mqtt.Logger) {
	l = l.With("lib", "paho")
	return pahoLogger{l, slog.LevelDebug}, pahoLogger{l, slog.LevelError}, pahoLogger{l, slog.LevelDebug}
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
