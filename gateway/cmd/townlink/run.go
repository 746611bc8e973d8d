package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/townlink/townlink/gateway"
	"github.com/townlink/townlink/gateway/bus"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/hardware/serial"
	"github.com/townlink/townlink/uplink/mqttpub"
)

func version() string { return gateway.Version }

func cmdRun(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlags("run", "-c FILE", "Run the gateway with a config file until SIGINT/SIGTERM.", stderr)
	path := fs.String("c", "/etc/townlink/townlink.yaml", "config `file`")
	jsonLogs := fs.Bool("json", false, "log as JSON lines (for journald/log shippers)")
	memLimit := fs.String("memory-limit", "56MiB", "soft limit for the Go heap (GC works harder near it; 0 = none; GOMEMLIMIT overrides)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (the config goes after -c)", errUsage, fs.Arg(0))
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		lim, err := config.ParseByteSize(*memLimit)
		if err != nil {
			return fmt.Errorf("%w: -memory-limit: %v", errUsage, err)
		}
		if lim > 0 {
			// Badger's table builders are most of the gateway's private
			// memory while a backlog is written; a soft limit keeps it
			// near 50 MB at some cost in peak ingest rate (docs/benchmarks.md).
			debug.SetMemoryLimit(int64(lim))
		}
	}
	log := slog.New(logHandler(stderr, cfg.Gateway.LogLevel, *jsonLogs, os.Getenv)).With("gw", cfg.Gateway.ID)
	mqttpub.InstallPahoLogger(log.With("part", "paho"))
	g, err := gateway.New(cfg, log)
	if err != nil {
		return err
	}
	return g.Run(ctx)
}

// placeholderID is the gateway id packaging/townlink.yaml ships with.
const placeholderID = "gw-change-me"

func cmdCheck(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", "[-strict] FILE", "Validate a config file: every error names file:line:col and how to fix it.", stderr)
	strict := fs.Bool("strict", false, "also refuse serial ports that do not exist now (run starts without them and keeps retrying) and the packaged placeholder id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: townlink check FILE", errUsage)
	}
	cfg, err := config.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	// What run would refuse or cannot use: secret and certificate files,
	// listen addresses; every problem at file:line:col. Serial ports that
	// are not there now are warnings (run starts and keeps retrying them)
	// unless -strict.
	ports := gateway.CheckPorts(cfg)
	if cfg.Gateway.ID == placeholderID {
		ports = errors.Join(ports, &gateway.SetupError{Path: "gateway.id", Err: fmt.Errorf(
			"%q is the packaged config's placeholder: write the id the county registered for this gateway (two boxes with one id knock each other off the broker)", placeholderID)})
	}
	hard := errors.Join(gateway.CheckSecrets(cfg), gateway.CheckListen(cfg))
	if *strict {
		hard = errors.Join(hard, ports)
	}
	if hard != nil {
		return located(fs.Arg(0), hard)
	}
	if ports != nil {
		for _, l := range strings.Split(located(fs.Arg(0), ports).Error(), "\n") {
			fmt.Fprintln(stderr, "warning: "+l)
		}
	}
	fmt.Fprintf(stdout, "%s: ok: gateway %s (county %s, township %s), %d lines, %d devices, brokers %v\n",
		fs.Arg(0), cfg.Gateway.ID, cfg.Gateway.County, cfg.Gateway.Township, len(cfg.Lines), len(cfg.Devices), cfg.Uplink.Brokers)
	for _, l := range cfg.Lines {
		fmt.Fprintf(stdout, "  line %-10s %s %s, silence before a request at least %s, a silent device retried every %s to %s\n",
			l.Name, l.Port, l.Mode(), max(l.Gap, bus.InterFrameGap(l.Mode())).Round(10*time.Microsecond), bus.DefaultMinBackoff, bus.DefaultMaxBackoff)
		for _, d := range cfg.Devices {
			if d.Line == l.Name {
				fmt.Fprintf(stdout, "    %-24s %-12s %-10s every %s\n", d.ID, d.Driver, d.Kind, d.Interval)
			}
		}
	}
	for _, d := range cfg.Devices {
		if d.Line == "" {
			fmt.Fprintf(stdout, "  %-26s %-12s %s\n", d.ID, d.Driver, d.Kind)
		}
	}
	fmt.Fprintf(stdout, "  meter clocks in %s\n", cfg.Gateway.Timezone)
	printRules(stdout, cfg)
	printDerived(stdout, cfg)
	return nil
}

// printRules lists the rules in effect, the default ones marked, and
// those switched off.
func printRules(w io.Writer, cfg *config.Config) {
	for _, r := range cfg.Rules {
		switch {
		case r.Disabled:
			fmt.Fprintf(w, "  rule %-20s switched off (enabled: false)\n", r.ID)
		case r.Default:
			fmt.Fprintf(w, "  rule %-20s %-9s sev%d %s (default; write a rule with this id to change it, or {id: %s, enabled: false})\n", r.ID, r.Kind, r.Severity, r.Scope, r.ID)
		default:
			fmt.Fprintf(w, "  rule %-20s %-9s sev%d %s\n", r.ID, r.Kind, r.Severity, r.Scope)
		}
	}
}

// printDerived says every value chosen for a key the file left out, and
// from what, one line each: "modbus dev x: timeout 150ms (derived:
// interval 200ms, 9600 8N1)".
func printDerived(w io.Writer, cfg *config.Config) {
	if len(cfg.Derived) == 0 {
		return
	}
	drv := map[string]config.Driver{}
	for _, d := range cfg.Devices {
		drv[d.ID] = d.Driver
	}
	fmt.Fprintln(w, "  chosen for what the file leaves out:")
	for _, d := range cfg.Derived {
		fmt.Fprintf(w, "    %s dev %s\n", drv[d.Device], d)
	}
}

func cmdPorts(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ports", "", "List the serial ports this machine has (USB adapters, UARTs).", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ports, err := serial.List()
	if err != nil {
		return err
	}
	if len(ports) == 0 {
		fmt.Fprintln(stdout, "no serial ports found (is the USB-RS485 adapter plugged in? `dmesg | tail`)")
	}
	for _, p := range ports {
		fmt.Fprintln(stdout, p)
	}
	return nil
}
