package gateway

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/townlink/townlink/gateway/sdnotify"
)

// watchdog is the part that talks to systemd (Type=notify, WatchdogSec=
// in packaging/townlink.service): READY=1 once every part is started,
// WATCHDOG=1 at half the watchdog period while the store answers, and
// STOPPING=1 when the gateway stops. Outside systemd it does nothing.
func (g *Gateway) watchdog(ctx context.Context) error {
	n, err := sdnotify.FromEnv(os.Getenv, os.Getpid())
	if err != nil {
		g.log.Warn("systemd notification disabled", "err", err)
		<-ctx.Done()
		return nil
	}
	return feedWatchdog(ctx, n, g.log, g.db.Ping)
}

// feedWatchdog sends READY=1, then WATCHDOG=1 every half period for as long
// as healthy returns nil, and STOPPING=1 when ctx ends. A failed health
// check skips that feed (systemd restarts the gateway when the store
// stays silent for a whole period) and is logged once per run of failures.
func feedWatchdog(ctx context.Context, n *sdnotify.Notifier, log *slog.Logger, healthy func() error) error {
	if !n.Enabled() {
		<-ctx.Done()
		return nil
	}
	if err := n.Notify(sdnotify.Ready); err != nil {
		log.Warn("systemd: cannot say ready", "err", err)
	}
	defer func() {
		if err := n.Notify(sdnotify.Stopping); err != nil {
			log.Warn("systemd: cannot say stopping", "err", err)
		}
	}()
	period := n.WatchdogPeriod()
	if period <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(period / 2)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := healthy(); err != nil {
			if !failing {
				log.Error("store does not answer; not feeding the systemd watchdog (systemd restarts the gateway if this lasts)", "err", err, "watchdog", period)
			}
			failing = true
			continue
		}
		if failing {
			log.Info("store answers again; feeding the systemd watchdog")
		}
		failing = false
		if err := n.Notify(sdnotify.Watchdog); err != nil {
			log.Warn("systemd: cannot feed the watchdog", "err", err)
		}
	}
}
