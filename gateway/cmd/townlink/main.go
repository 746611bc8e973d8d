// Command townlink is the Townlink edge gateway and its field tools.
//
//	townlink run -c /etc/townlink/townlink.yaml   run the gateway
//	townlink check townlink.yaml                   validate a config file
//	townlink tail -broker tcp://127.0.0.1:1883     watch, decode and audit the uplink (platform side)
//	townlink verify -pub KEY capture.cbor          audit a capture offline (evidence chain and signatures, gaps, tail)
//	townlink id -c /etc/townlink/townlink.yaml     print the gateway's public key for registration at the county
//	townlink broker -listen 127.0.0.1:1883         an embedded MQTT broker (county stand-in for demos)
//	townlink status -c /etc/townlink/townlink.yaml devices, lines, uplink, alarms, certificates of the running gateway
//	townlink ports                                 list serial ports
//	townlink scan [-c FILE] [--baud auto] LINE     find the devices on a line, print config entries
//	townlink read [-c FILE] [-v] DEVICE            read one configured device once
//	townlink backup -c CONFIG FILE                 back up the store and the identity key
//	townlink restore -c CONFIG [-seen ...] FILE    restore a backup without seq reuse or a chain fork
//	townlink version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"run", "run the gateway", cmdRun},
		{"check", "validate a config file and print what it sets up", cmdCheck},
		{"tail", "subscribe to the uplink, print decoded records and audit them (platform side)", cmdTail},
		{"verify", "audit a captured uplink stream offline; names the bad records", cmdVerify},
		{"id", "print the gateway's public key (generated at first use) for registration at the county", cmdID},
		{"broker", "run an embedded MQTT broker (a county stand-in for demos and tests)", cmdBroker},
		{"status", "show what the running gateway is doing (devices, lines, uplink, alarms, certificates)", cmdStatus},
		{"ports", "list the serial ports this machine has", cmdPorts},
		{"scan", "find the devices on a line and print the config entries that read them", cmdScan},
		{"read", "read a configured serial device once, with units (-v: frames in hex)", cmdRead},
		{"backup", "back up the store, pulse counters and identity key to a file (also while the gateway runs)", cmdBackup},
		{"restore", "restore a backup so that the platform sees no reused seq and no forked chain", cmdRestore},
		{"version", "print the version", cmdVersion},
	}
}

// errUsage marks a usage error: exit status 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(Main(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs the command line and returns the exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	usage := func(w io.Writer) {
		fmt.Fprintln(w, "townlink: the Townlink edge gateway (乡镇边缘网关)")
		fmt.Fprintln(w, "\nUsage: townlink <command> [flags]   (townlink <command> -h for its flags)\n\nCommands:")
		for _, c := range commands() {
			fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
		}
	}
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if a := args[0]; a == "-h" || a == "-help" || a == "--help" || a == "help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintln(stderr, "townlink "+c.name+":", err)
			return 2
		default:
			fmt.Fprintln(stderr, "townlink "+c.name+":", err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "townlink: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// newFlags returns a flag set whose -h prints a usage line and flags.
func newFlags(name, args, doc string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "Usage: townlink %s %s\n\n%s\n", name, args, doc)
		fs.PrintDefaults()
	}
	return fs
}

func cmdVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "", "Print the version.", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "townlink", version())
	return nil
}
