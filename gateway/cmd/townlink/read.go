package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/recent"
	"github.com/townlink/townlink/gateway/scan"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serial"
)

func cmdRead(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("read", "[-c CONFIG] [-v] DEVICE",
		"Read a configured serial device once and print its points with units; -v shows every request and\n"+
			"reply frame in hex. Goes through the running gateway when it answers, else opens the port.", stderr)
	cfgPath := fs.String("c", defaultConfig, "config `file`")
	verbose := fs.Bool("v", false, "print each request (>) and reply (<) in hex")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: townlink read [-c CONFIG] [-v] DEVICE (flags go before DEVICE)", errUsage)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	dev, line, err := findDevice(cfg, fs.Arg(0))
	if err != nil {
		return err
	}
	var frames io.Writer
	if *verbose {
		frames = stdout
	}
	fmt.Fprintf(stdout, "%s: %s on %s (%s, %s)%s\n", dev.ID, dev.Driver, line.Name, line.Port, line.Mode(), where(dev))
	var rs []drivers.Reading
	remote, err := remoteFor(ctx, cfg)
	switch {
	case err != nil:
		return err
	case remote != nil:
		if frames != nil {
			fmt.Fprintln(stdout, "(through the running gateway: frames are not shown; stop it to see them with -v)")
		}
		rs, err = remote.Read(ctx, dev.ID)
	default:
		rs, err = readDirect(ctx, dev, line, cfg.Gateway.Location, frames)
	}
	printReadings(stdout, rs)
	if err != nil && len(rs) == 0 && strings.Contains(err.Error(), drivers.ErrTimeout.Error()) { // also as text from the gateway
		what := "address"
		if dev.Driver == config.DriverModbus {
			what = "unit"
		}
		return fmt.Errorf("%s: %w\n(nothing answered at %s%s: check the %s, the line's baud and parity — `townlink scan --baud auto %s` finds both — and the A/B wiring)",
			dev.ID, err, line.Mode(), where(dev), what, line.Name)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", dev.ID, err)
	}
	return nil
}

// findDevice finds a serial device of the config and its line.
func findDevice(cfg *config.Config, id string) (config.Device, config.Line, error) {
	var ids []string
	for _, d := range cfg.Devices {
		if d.ID != id {
			ids = append(ids, d.ID)
			continue
		}
		if !d.Driver.Serial() {
			return d, config.Line{}, fmt.Errorf("%w: %s uses driver %s, not a serial line: read it through the running gateway", errUsage, id, d.Driver)
		}
		for _, l := range cfg.Lines {
			if l.Name == d.Line {
				return d, l, nil
			}
		}
		return d, config.Line{}, fmt.Errorf("%s: line %q is not in the config", id, d.Line)
	}
	return config.Device{}, config.Line{}, fmt.Errorf("%w: no device %q in the config (it has %v)", errUsage, id, ids)
}

func where(d config.Device) string {
	switch {
	case d.Address != "":
		return ", address " + d.Address
	case d.Driver == config.DriverModbus:
		return fmt.Sprintf(", unit %d", d.Unit)
	}
	return ""
}

// readDirect opens the device's line and polls it once.
func readDirect(ctx context.Context, d config.Device, l config.Line, loc *time.Location, frames io.Writer) ([]drivers.Reading, error) {
	sp, err := serial.Open(l.Device, l.Mode())
	if err != nil {
		return nil, err
	}
	defer sp.Close()
	var p hardware.Port = sp
	var tap *scan.Tap
	if frames != nil {
		tap = scan.NewTap(sp, frames)
		p = tap
	}
	rs, err := scan.Poll(ctx, d, p, loc)
	if tap != nil {
		tap.End()
	}
	return rs, err
}

// printReadings prints each point with its value and unit.
func printReadings(w io.Writer, rs []drivers.Reading) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rs {
		names := make([]string, 0, len(r.Values))
		for n := range r.Values {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", n, recent.Text(r.Values[n]), scan.UnitOf(n))
		}
	}
	tw.Flush()
}
