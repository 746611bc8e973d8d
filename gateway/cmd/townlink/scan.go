package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/recent"
	"github.com/townlink/townlink/gateway/scan"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/board"
	"github.com/townlink/townlink/hardware/serial"
)

const defaultConfig = "/etc/townlink/townlink.yaml"

// target is the line a scan looks at.
type target struct {
	Name, Port string // as the config writes them
	Path       string // what to open
	Mode       hardware.Mode
	Known      bool // a line of the config
}

// loadOptional loads path. The default path may be missing or unusable
// (a scan needs no config): that is said on warn and the scan goes on.
func loadOptional(path string, given bool, warn io.Writer) (*config.Config, error) {
	if !given {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
	}
	cfg, err := config.Load(path)
	if err != nil && !given {
		fmt.Fprintf(warn, "townlink scan: not using %s (%v); give -c to use a config\n", path, err)
		return nil, nil
	}
	return cfg, err
}

// resolveLine finds LINE: a line of the config (by name or port), a board
// label (the config's board, else the default one), or a device path.
func resolveLine(cfg *config.Config, arg string) (target, error) {
	if strings.Contains(arg, "/") && !filepath.IsAbs(arg) {
		// The printed config entries must name the port from / (the
		// gateway does not run in this directory).
		abs, err := filepath.Abs(arg)
		if err != nil {
			return target{}, err
		}
		arg = abs
	}
	if cfg != nil {
		for _, l := range cfg.Lines {
			if l.Name == arg || l.Port == arg || l.Device == arg {
				return target{Name: l.Name, Port: l.Port, Path: l.Device, Mode: l.Mode(), Known: true}, nil
			}
		}
	}
	bname := config.DefaultBoard
	if cfg != nil && cfg.Gateway.Board != "" {
		bname = cfg.Gateway.Board
	}
	prof, err := board.Lookup(bname)
	if err != nil {
		return target{}, err
	}
	path, err := prof.Serial(arg)
	if err != nil {
		return target{}, fmt.Errorf("%w: %v (or give a device path such as /dev/ttyUSB0)", errUsage, err)
	}
	name := arg
	if strings.Contains(arg, "/") { // /dev/ttyUSB0 → ttyUSB0, /dev/pts/3 → pts-3
		name = strings.ReplaceAll(strings.TrimPrefix(filepath.Clean(arg), "/dev/"), "/", "-")
	}
	return target{Name: name, Port: arg, Path: path}, nil
}

func cmdScan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("scan", "[-c CONFIG] [--baud auto|9600|9600-8N1] [--protocols dlt645,cjt188,modbus] LINE",
		"Find the devices on a line (a line of the config, a board label or a device path): DL/T 645 meters\n"+
			"(wildcard search), CJ/T 188 meters (read address) and Modbus units (probe 1-247). Prints a table\n"+
			"with a first reading of each and the config entries to paste. Ctrl-C stops and prints what was found.", stderr)
	cfgPath := fs.String("c", defaultConfig, "config `file` (optional): its lines and board name LINE")
	baud := fs.String("baud", "", "serial `setting`: auto, a rate (9600) or rate-framing (9600-8N1); default: the config line's, else auto")
	protos := fs.String("protocols", "dlt645,cjt188,modbus", "protocols to look for, comma-separated")
	unitList := fs.String("units", "1-247", "Modbus `units` to probe, e.g. 1-247 or 1,5,10-20")
	wait := fs.Duration("wait", 0, "how long a device may take to start answering (0: DL/T 645 and CJ/T 188 500ms, Modbus 100ms)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: townlink scan [flags] LINE (flags go before LINE)", errUsage)
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "c" })
	cfg, err := loadOptional(*cfgPath, given, stderr)
	if err != nil {
		return err
	}
	opts, plan, tgt, err := scanSetup(cfg, fs.Arg(0), *baud, *protos, *unitList, *wait)
	if err != nil {
		return err
	}
	bar := newProgressBar(stderr, tgt.Name)
	var found []scan.Found
	remote, err := remoteFor(ctx, cfg)
	switch {
	case err != nil:
		return err
	case remote != nil && tgt.Known:
		if *baud != "" {
			fmt.Fprintf(stderr, "the gateway is running: scanning %s through it at its setting %s (--baud ignored; stop the gateway to try others)\n", tgt.Name, tgt.Mode)
		}
		rf, err := remote.Scan(ctx, tgt.Name, opts.Protocols, bar.update)
		bar.finish()
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "scan interrupted: %d device(s) found so far\n", len(rf))
		}
		printRemoteFound(stdout, rf)
		if err != nil && ctx.Err() == nil {
			return err
		}
		return nil
	case remote != nil:
		return fmt.Errorf("the gateway is running and %s is not one of its lines; scanning it would open the port a second time — stop the gateway or scan a configured line", tgt.Name)
	default:
		open := func(m hardware.Mode) (hardware.Port, error) { return serial.Open(tgt.Path, m) }
		found, err = scan.Line(ctx, open, plan, opts, bar.update)
	}
	bar.finish()
	markConfigured(cfg, tgt, found)
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "scan interrupted: %d device(s) found so far\n", len(found))
	}
	if len(found) == 0 && errors.Is(err, serial.ErrOpen) {
		return err // the line was never listened to: "no device answered" would mislead
	}
	printFound(stdout, found)
	fmt.Fprintln(stdout)
	if len(found) > 0 {
		fmt.Fprintln(stdout, "# Config entries (paste under lines: and devices:; townlink check accepts them):")
		fmt.Fprint(stdout, scan.Config(found, scan.LineEntry{Name: tgt.Name, Port: tgt.Port, Known: tgt.Known, Mode: tgt.Mode}))
	} else {
		fmt.Fprintln(stdout, "no device answered")
	}
	if err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// scanSetup reads the flags into the scan's options, plan and line.
func scanSetup(cfg *config.Config, line, baud, protos, unitList string, wait time.Duration) (scan.Options, scan.Plan, target, error) {
	fail := func(err error) (scan.Options, scan.Plan, target, error) {
		return scan.Options{}, nil, target{}, err
	}
	tgt, err := resolveLine(cfg, line)
	if err != nil {
		return fail(err)
	}
	ps, err := scan.ParseProtocols(protos)
	if err != nil {
		return fail(fmt.Errorf("%w: --protocols: %v", errUsage, err))
	}
	units, err := scan.ParseUnits(unitList)
	if err != nil {
		return fail(fmt.Errorf("%w: --units: %v", errUsage, err))
	}
	if wait < 0 || wait > 10*time.Second {
		return fail(fmt.Errorf("%w: --wait %v (want 0 to 10s)", errUsage, wait))
	}
	var plan scan.Plan
	switch {
	case baud == "" && tgt.Known:
		plan = scan.FixedPlan(tgt.Mode, true, ps)
	case baud == "":
		plan = scan.AutoPlan(ps)
	default:
		mode, framed, auto, err := scan.ParseSetting(baud)
		if err != nil {
			return fail(fmt.Errorf("%w: --baud: %v", errUsage, err))
		}
		plan = scan.AutoPlan(ps)
		if !auto {
			plan = scan.FixedPlan(mode, framed, ps)
		}
	}
	opts := scan.Options{Protocols: ps, ReplyDelay: wait, Units: units, Line: tgt.Name, Port: tgt.Port}
	return opts, plan, tgt, nil
}

// progressBar draws the scan's progress on stderr: one line redrawn with
// \r on a terminal, else a line whenever the step or the count found
// changes.
type progressBar struct {
	w         io.Writer
	name      string
	tty       bool
	last      scan.Progress
	drawn     bool
	lastWidth int
}

func newProgressBar(w io.Writer, name string) *progressBar {
	b := &progressBar{w: w, name: name}
	if f, ok := w.(*os.File); ok {
		if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			b.tty = true
		}
	}
	return b
}

func (b *progressBar) update(p scan.Progress) {
	changed := p.Step != b.last.Step || p.Found != b.last.Found || !b.drawn
	b.last, b.drawn = p, true
	if !b.tty {
		if changed {
			fmt.Fprintln(b.w, b.line(p))
		}
		return
	}
	l := b.line(p)
	pad := max(b.lastWidth-len(l), 0)
	b.lastWidth = len(l)
	fmt.Fprintf(b.w, "\r%s%s", l, strings.Repeat(" ", pad))
}

func (b *progressBar) line(p scan.Progress) string {
	const width = 20
	filled := 0
	if p.Total > 0 {
		filled = min(width*p.Done/p.Total, width)
	}
	left := p.Left.Round(time.Second)
	return fmt.Sprintf("scan %s [%s%s] %d/%d probes, %s left, %d found: %s", b.name,
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.Done, p.Total, left, p.Found, p.Step)
}

func (b *progressBar) finish() {
	if b.tty && b.drawn {
		fmt.Fprintln(b.w)
	}
}

// printFound prints the table of what a scan found.
func printFound(w io.Writer, found []scan.Found) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tPROTOCOL\tEDITION\tSETTING\tDEVICE\tFIRST READING")
	for _, f := range found {
		first := formatValues(f.Reading.Values)
		switch {
		case f.Note != "":
			first = strings.TrimSpace(first + " (" + f.Note + ")")
		case f.ReadErr != "" && first == "":
			first = "(read failed: " + f.ReadErr + ")"
		case f.ReadErr != "":
			first += " (partly failed: " + f.ReadErr + ")"
		case first == "":
			first = "(not read: the scan stopped first)" // found, then interrupted before its reading
		}
		if f.Exception != 0 {
			first = fmt.Sprintf("[probe: exception %02X] ", f.Exception) + first
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Address(), f.Edition.Protocol(), f.Edition, f.Mode, f.Device.ID, first)
	}
	tw.Flush()
}

// formatValues writes point values sorted by name, with units.
func formatValues(vals map[string]drivers.Value) string {
	names := make([]string, 0, len(vals))
	for n := range vals {
		names = append(names, n)
	}
	slices.Sort(names)
	var parts []string
	for _, n := range names {
		v := n + "=" + recent.Text(vals[n])
		if u := scan.UnitOf(n); u != "" {
			v += " " + u
		}
		parts = append(parts, v)
	}
	return strings.Join(parts, ", ")
}

// markConfigured notes the devices found that the config already reads on
// that line, so that their entries are not pasted twice.
func markConfigured(cfg *config.Config, tgt target, found []scan.Found) {
	if cfg == nil || !tgt.Known {
		return
	}
	for i := range found {
		f := &found[i]
		for _, d := range cfg.Devices {
			same := d.Driver == f.Device.Driver && strings.EqualFold(d.Address, f.Device.Address)
			if f.Edition == scan.ModbusRTU {
				same = d.Driver == config.DriverModbus && d.Unit == f.Device.Unit
			}
			if d.Line == tgt.Name && same {
				f.Note = "already in the config as " + d.ID
			}
		}
	}
}
