package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/townlink/townlink/hardware/gpio"
	"github.com/townlink/townlink/hardware/gpiosim"
)

var gpioRE = regexp.MustCompile(`^gpio (DI[12]) (\S+) \((.+)\)$`)

// townsim serves DI1 (a water meter's pulses with bounce) and DI2 (a
// traffic loop) on sockets beside the serial links, announced before
// ready, and removes them when it stops.
func TestTownsimServesDigitalInputs(t *testing.T) {
	root := t.TempDir()
	ts := startTownsim(t, "-dir", filepath.Join(root, "dev"))
	ts.untilReady()
	if len(ts.gpio) != 2 {
		t.Fatalf("gpio lines %q, want DI1 and DI2", ts.gpio)
	}
	paths := map[string]string{}
	for _, l := range ts.gpio {
		m := gpioRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("gpio line %q", l)
		}
		paths[m[1]] = m[2]
	}
	if want := filepath.Join(root, "gpio", "DI1"); paths["DI1"] != want {
		t.Fatalf("DI1 at %s, want %s (DIR/../gpio)", paths["DI1"], want)
	}

	// The water meter: 2 Hz from 1 s after start, each edge with bounce.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := gpiosim.Dial(paths["DI1"])
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if lvl, err := l.Read(); err != nil || lvl {
		t.Fatalf("DI1 level %v %v, want low (idle)", lvl, err)
	}
	var edges []gpio.Edge
	for len(edges) < 2*5*2 { // two pulses: 2 clean edges + 4 bounces each
		e, err := l.WaitEdge(ctx, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		edges = append(edges, e)
	}
	for i := 1; i < len(edges); i++ {
		if edges[i].Level == edges[i-1].Level || edges[i].Time.Before(edges[i-1].Time) {
			t.Fatalf("edge %d %v after %v", i, edges[i], edges[i-1])
		}
	}
	// Clean edges are every 250 ms; bounces fall within 3 ms after them.
	if d := edges[5].Time.Sub(edges[0].Time); d != 250*time.Millisecond {
		t.Errorf("rising to falling clean edge %v, want 250ms", d)
	}
	if d := edges[4].Time.Sub(edges[0].Time); d <= 0 || d > 3*time.Millisecond {
		t.Errorf("last bounce %v after the clean edge, want within 3ms", d)
	}
	if d := edges[10].Time.Sub(edges[0].Time); d != 500*time.Millisecond {
		t.Errorf("pulse period %v, want 500ms (2 Hz)", d)
	}
	// The traffic loop is there too.
	l2, err := gpiosim.Dial(paths["DI2"])
	if err != nil {
		t.Fatal(err)
	}
	l2.Close()

	ts.stop()
	<-ts.done
	if ts.err != nil {
		t.Fatalf("run: %v", ts.err)
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket %s left behind: %v", p, err)
		}
	}
}

func TestTownsimGPIOFlag(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sockets")
	ts := startTownsim(t, "-dir", t.TempDir(), "-gpio", dir)
	ts.untilReady()
	if len(ts.gpio) != 2 || gpioRE.FindStringSubmatch(ts.gpio[0])[2] != filepath.Join(dir, "DI1") {
		t.Fatalf("with -gpio %s: %q", dir, ts.gpio)
	}
	off := startTownsim(t, "-dir", t.TempDir(), "-gpio", "none")
	off.untilReady()
	if len(off.gpio) != 0 {
		t.Fatalf("with -gpio none: %q", off.gpio)
	}
}
