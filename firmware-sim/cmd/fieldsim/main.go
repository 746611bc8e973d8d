// Command fieldsim runs simulated enforcement recorders and hall kiosks
// against an MQTT broker (the gateway's field broker):
//
//	fieldsim -broker tcp://127.0.0.1:1884 -recorder zfy-001:password -kiosk hall-kiosk-1:password
//
// Each -recorder and -kiosk (repeatable) is id:password; the MQTT user
// name is the id. -speed accelerates the simulated clock, -duration ends
// the simulated day (0 = until interrupted), -seed makes it repeatable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/townlink/townlink/firmware-sim/kiosksim"
	"github.com/townlink/townlink/firmware-sim/recordersim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "fieldsim:", err)
		os.Exit(1)
	}
}

// creds collects repeated id:password flags.
type creds [][2]string

func (c *creds) String() string { return fmt.Sprint(len(*c)) }
func (c *creds) Set(s string) error {
	id, pw, ok := strings.Cut(s, ":")
	if !ok || id == "" {
		return fmt.Errorf("want id:password, got %q", s)
	}
	*c = append(*c, [2]string{id, pw})
	return nil
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("fieldsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	broker := fs.String("broker", "tcp://127.0.0.1:1884", "field broker URL (tcp://host:port)")
	speed := fs.Float64("speed", 1, "simulated seconds per real second")
	seed := fs.Int64("seed", 1, "random seed (device i uses seed+i)")
	duration := fs.Duration("duration", 0, "simulated length of the day (0 = until interrupted)")
	cbor := fs.Float64("cbor", 0.2, "share of recorder messages sent as CBOR")
	verbose := fs.Bool("v", false, "log every message")
	var recs, kiosks creds
	fs.Var(&recs, "recorder", "a recorder as id:password (repeatable)")
	fs.Var(&kiosks, "kiosk", "a kiosk as id:password (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(recs)+len(kiosks) == 0 {
		return errors.New("nothing to run: give -recorder and/or -kiosk")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(recs)+len(kiosks))
	start := time.Now()
	for i, c := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = recordersim.Run(ctx, recordersim.Options{Broker: *broker, ID: c[0], Username: c[0], Password: c[1],
				Speed: *speed, Seed: *seed + int64(i), Start: start, Duration: *duration, CBORShare: *cbor, Logger: log})
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	for i, c := range kiosks {
		n := len(recs) + i
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[n] = kiosksim.Run(ctx, kiosksim.Options{Broker: *broker, ID: c[0], Username: c[0], Password: c[1],
				Speed: *speed, Seed: *seed + int64(n), Start: start, Duration: *duration, Logger: log})
			if errs[n] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
