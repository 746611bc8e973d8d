package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/townlink/townlink/hardware/serialsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	in, restore := pollableStdin()
	err := run(ctx, os.Args[1:], in, os.Stdout, os.Stderr)
	restore()
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "townsim:", err)
		os.Exit(1)
	}
}

// pollableStdin returns stdin in non-blocking mode, so that run can stop
// its reader with a deadline, and a function that puts the mode back.
// Stdin that cannot be polled (a file, /dev/null) ends by itself.
// A terminal that townsim does not own (it runs in the background with
// `&`) is not read at all: reading it would stop the process (SIGTTIN).
func pollableStdin() (io.Reader, func()) {
	if _, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		if fg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP); err == nil && fg != unix.Getpgrp() {
			return strings.NewReader(""), func() {}
		}
	}
	if err := unix.SetNonblock(0, true); err != nil {
		return os.Stdin, func() {}
	}
	return os.NewFile(0, "stdin"), func() { _ = unix.SetNonblock(0, false) }
}

const usageHead = `townsim runs a simulated township's field devices on pseudo-terminals.

Usage:
  townsim -dir .demo/dev [-gpio .demo/gpio] [-scenario township] [-wire-time] [-faults 2=silent] [-v]
  townsim -list

For each line it links DIR/<line> to its PTY, prints
  line RS485-1 /abs/DIR/RS485-1 -> /dev/pts/5 (modbus units 1,2,3)
for each digital input it serves a Unix socket GPIODIR/<input> and prints
  gpio DI1 /abs/GPIODIR/DI1 (pulse water meter, ...)
then "ready", and serves until SIGINT/SIGTERM, when it removes its links
and sockets. Open DIR/<line> from the gateway like a serial device, and
an input as pin "sim:/abs/GPIODIR/DI1".

Flags:
`

// deadliner is a reader that a deadline can unblock (os.File on a pipe or
// a terminal).
type deadliner interface {
	SetReadDeadline(t time.Time) error
}

// run is townsim: it serves until ctx ends and reads commands from stdin.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("townsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory for the line symlinks (created if missing)")
	name := fs.String("scenario", "township", "scenario to run: "+strings.Join(scenarioNames(), ", "))
	wire := fs.Bool("wire-time", false, "delay each reply by the request's and reply's time on the wire at the line's baud rate, plus t3.5")
	faults := fs.String("faults", "", "faults from the start: UNIT=FAULT[,UNIT=FAULT...], e.g. 2=silent,3=exception:4 (FAULT as in the fault command)")
	gpioFlag := fs.String("gpio", "", "directory for the digital inputs' Unix sockets (default: beside -dir, DIR/../gpio; \"none\": no inputs)")
	list := fs.Bool("list", false, "print the scenario's register map and exit")
	verbose := fs.Bool("v", false, "log every request and reply on stderr")
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
		fmt.Fprint(stderr, "\n"+commandHelp)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (see -help)", fs.Args())
	}
	mk, ok := scenarios()[*name]
	if !ok {
		return fmt.Errorf("no scenario %q (have %s)", *name, strings.Join(scenarioNames(), ", "))
	}
	sc := mk()
	if *list {
		return sc.listPoints(stdout)
	}
	if *dir == "" {
		return errors.New("-dir is required (e.g. -dir .demo/dev)")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	start := time.Now()
	lines, err := buildLines(sc, start, *wire, log)
	if err != nil {
		return err
	}
	if err := applyFaults(lines, *faults); err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}

	// Shutdown order: stop the servers and the stdin reader, wait for
	// them, then remove the links and close the PTYs.
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var cleanups []func()
	defer func() {
		cancel()
		wg.Wait()
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	errc := make(chan error, len(lines)+len(sc.Inputs))
	if err := serveLines(ctx, cancel, &wg, errc, &cleanups, lines, abs, stdout, log); err != nil {
		return err
	}

	if err := serveInputs(ctx, cancel, &wg, errc, gpioDir(*gpioFlag, abs), sc.Inputs, start, stdout, log); err != nil {
		return err
	}

	cmds := readCommands(ctx, &wg, stdin)

	fmt.Fprintln(stdout, "ready")
	log.Info("serving", "scenario", sc.Name, "dir", abs, "wire_time", *wire)
	for {
		select {
		case <-ctx.Done():
			select {
			case err := <-errc:
				return err
			default:
				return nil
			}
		case c, ok := <-cmds:
			if !ok {
				cmds = nil // stdin closed: keep serving until a signal
				continue
			}
			out, err := command(lines, c)
			answer(stdout, out, err)
		}
	}
}

// buildLines builds the scenario's simulated lines, logging to log.
func buildLines(sc Scenario, start time.Time, wire bool, log *slog.Logger) ([]*simLine, error) {
	var lines []*simLine
	for _, l := range sc.Lines {
		sl, err := l.build(start, wire)
		if err != nil {
			return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
		}
		if sl.bus != nil {
			sl.bus.Logger = log.With("line", l.Name)
		}
		if sl.power != nil {
			sl.power.Logger = log.With("line", l.Name)
		}
		if sl.water != nil {
			sl.water.Logger = log.With("line", l.Name)
		}
		lines = append(lines, sl)
	}
	return lines, nil
}

// serveLines serves each line on a PTY linked from dir; what must be undone
// at shutdown is appended to cleanups, a server's failure goes to errc and
// cancels the run.
func serveLines(ctx context.Context, cancel context.CancelFunc, wg *sync.WaitGroup, errc chan<- error, cleanups *[]func(),
	lines []*simLine, dir string, stdout io.Writer, log *slog.Logger) error {
	for _, sl := range lines {
		pty, err := serialsim.OpenPTY()
		if err != nil {
			return err
		}
		*cleanups = append(*cleanups, func() { pty.Close() })
		link := filepath.Join(dir, sl.Name)
		if err := replaceLink(link, pty.Path()); err != nil {
			return err
		}
		*cleanups = append(*cleanups, func() { removeLink(link, pty.Path(), log) })
		fmt.Fprintf(stdout, "line %s %s -> %s (%s)\n", sl.Name, link, pty.Path(), sl.summary)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sl.server.Serve(ctx, pty); err != nil {
				errc <- fmt.Errorf("line %s: %w", sl.Name, err)
				cancel()
			}
		}()
	}
	return nil
}

// readCommands passes stdin's lines on until ctx ends or stdin closes
// (then the channel is closed).
func readCommands(ctx context.Context, wg *sync.WaitGroup, stdin io.Reader) chan string {
	cmds := make(chan string)
	if d, ok := stdin.(deadliner); ok {
		// Unblock the reader at shutdown; a reader without deadlines
		// (a file, /dev/null) reaches EOF by itself.
		context.AfterFunc(ctx, func() { _ = d.SetReadDeadline(time.Now()) })
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(cmds)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			select {
			case cmds <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	return cmds
}

func scenarioNames() []string {
	var names []string
	for n := range scenarios() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// replaceLink points link at target, replacing a stale symlink but never
// a file or directory.
func replaceLink(link, target string) error {
	if fi, err := os.Lstat(link); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		return fmt.Errorf("%s exists and is not a symlink: not replacing it", link)
	}
	tmp := link + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// removeLink removes link if it still points at target.
func removeLink(link, target string, log *slog.Logger) {
	if got, err := os.Readlink(link); err == nil && got == target {
		if err := os.Remove(link); err != nil {
			log.Warn("remove link", "link", link, "err", err)
		}
	}
}
