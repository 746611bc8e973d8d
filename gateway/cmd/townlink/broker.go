package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/townlink/townlink/gateway/mqttbroker"
)

func cmdBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("broker", "[-listen ADDR]", "Run an embedded MQTT broker that accepts every client: a stand-in for the county broker\nin demos and tests. Not for production (no authentication).", stderr)
	listen := fs.String("listen", "127.0.0.1:1883", "`host:port` to listen on (port 0 picks a free one)")
	verbose := fs.Bool("v", false, "log client connections")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	b, err := mqttbroker.Start(mqttbroker.Options{Listen: *listen, Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "broker listening on tcp://%s\n", b.Addr())
	<-ctx.Done()
	return b.Close()
}
