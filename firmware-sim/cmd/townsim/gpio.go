package main

import (
	"context"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/townlink/townlink/firmware-sim/pulsesim"
	"github.com/townlink/townlink/hardware/gpio"
)

// Input is a simulated digital input (a GPIO pin's wiring), served on the
// Unix-domain socket GPIODIR/<Name> for hardware/gpiosim.Dial.
type Input struct {
	Name    string     // board label, e.g. DI1; also the socket's name
	Summary string     // what is wired, for the "gpio" line
	Idle    gpio.Level // level before the first edge
	// Edges is the wire's edge sequence for a run that starts at start.
	Edges func(start time.Time) iter.Seq[gpio.Edge]
}

// gpioDir is where the input sockets go: flag value dir, or beside the
// serial links' directory (DIR/../gpio); "" when disabled ("none").
func gpioDir(flagValue, serialDir string) string {
	switch flagValue {
	case "none":
		return ""
	case "":
		return filepath.Join(filepath.Dir(serialDir), "gpio")
	}
	return flagValue
}

// serveInputs binds a socket per input, prints a "gpio" line for each and
// plays the inputs' edges from start in goroutines that wg waits for
// (each removes its socket when ctx ends). A failing input sends its error
// to errc and cancels.
func serveInputs(ctx context.Context, cancel context.CancelFunc, wg *sync.WaitGroup, errc chan<- error, dir string, inputs []Input, start time.Time, stdout io.Writer, log *slog.Logger) error {
	if dir == "" || len(inputs) == 0 {
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	var servers []*pulsesim.Server
	for _, in := range inputs {
		srv, err := pulsesim.Listen(filepath.Join(abs, in.Name), pulsesim.ServerConfig{Level: in.Idle, Logger: log.With("input", in.Name)})
		if err != nil {
			for _, s := range servers {
				_ = s.Close()
			}
			return fmt.Errorf("input %s: %w", in.Name, err)
		}
		servers = append(servers, srv)
	}
	for i, in := range inputs {
		srv := servers[i]
		fmt.Fprintf(stdout, "gpio %s %s (%s)\n", in.Name, srv.Path(), in.Summary)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ctx, in.Edges(start)); err != nil {
				errc <- fmt.Errorf("input %s: %w", in.Name, err)
				cancel()
			}
		}()
	}
	return nil
}

// waterMeterInput is a pulse-output water meter: 10 L a pulse at 2 Hz
// (72 m³/h, demo-accelerated), reed-contact bounce.
func waterMeterInput(name string, seed uint64) Input {
	tr := pulsesim.Train{Period: pulsesim.Period(2), Bounce: 3 * time.Millisecond, Bounces: 2, Seed: seed}
	return Input{
		Name:    name,
		Summary: "pulse water meter, 10 L/pulse, 2 Hz, high 250 ms, 2 bounces within 3 ms",
		Idle:    tr.Idle(),
		Edges: func(start time.Time) iter.Seq[gpio.Edge] {
			tr.Start = start.Add(time.Second)
			return tr.Edges()
		},
	}
}

// trafficInput is a loop detector's relay output: vehicles at random,
// 0.5 a second on average.
func trafficInput(name string, seed uint64) Input {
	tf := pulsesim.Traffic{Rate: 0.5, Occupancy: 300 * time.Millisecond, Gap: 100 * time.Millisecond,
		Bounce: time.Millisecond, Bounces: 1, Seed: seed}
	return Input{
		Name:    name,
		Summary: "traffic loop, Poisson 0.5 vehicles/s, high 300 ms per vehicle, 1 bounce within 1 ms",
		Idle:    gpio.Low,
		Edges: func(start time.Time) iter.Seq[gpio.Edge] {
			tf.Start = start
			return tf.Edges()
		},
	}
}
