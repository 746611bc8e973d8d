package pulsesim_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/townlink/townlink/firmware-sim/pulsesim"
	"github.com/townlink/townlink/hardware/gpio"
	"github.com/townlink/townlink/hardware/gpiosim"
)

var t0 = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

func TestTrainEdgesBounceWithinWindowAndAlternate(t *testing.T) {
	tr := pulsesim.Train{Start: t0, Period: pulsesim.Period(200), Pulses: 1000, Bounce: 2 * time.Millisecond, Bounces: 3, Seed: 7}
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	edges := slices.Collect(tr.Edges())
	if want := 1000 * 2 * (1 + 2*3); len(edges) != want {
		t.Fatalf("%d edges, want %d", len(edges), want)
	}
	lvl := tr.Idle()
	var clean time.Time
	for i, e := range edges {
		if e.Level == lvl {
			t.Fatalf("edge %d does not change the level", i)
		}
		lvl = e.Level
		if i > 0 && !e.Time.After(edges[i-1].Time) {
			t.Fatalf("edge %d at %v not after %v", i, e.Time, edges[i-1].Time)
		}
		if i%7 == 0 { // a clean edge: every 2.5 ms exactly
			want := t0.Add(time.Duration(i/7) * 2500 * time.Microsecond)
			if !e.Time.Equal(want) {
				t.Fatalf("clean edge %d at %v, want %v", i/7, e.Time, want)
			}
			clean = e.Time
		} else if d := e.Time.Sub(clean); d <= 0 || d > 2*time.Millisecond {
			t.Fatalf("bounce edge %d is %v after its clean edge", i, d)
		}
	}
	if lvl != tr.Idle() {
		t.Fatal("train does not end idle")
	}
	if last := edges[len(edges)-1].Time; last.After(tr.End()) {
		t.Fatalf("last edge %v after End %v", last, tr.End())
	}
}

func TestTrainIsDeterministicPerSeed(t *testing.T) {
	tr := pulsesim.Train{Start: t0, Period: 100 * time.Millisecond, Pulses: 50, Bounce: 5 * time.Millisecond, Bounces: 2, Seed: 42}
	a, b := slices.Collect(tr.Edges()), slices.Collect(tr.Edges())
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different edges")
	}
	tr.Seed = 43
	if c := slices.Collect(tr.Edges()); slices.Equal(a, c) {
		t.Fatal("different seeds, same edges")
	}
}

func TestTrainValidate(t *testing.T) {
	for _, tr := range []pulsesim.Train{
		{Period: 0},
		{Period: time.Millisecond, High: 2 * time.Millisecond},
		{Period: pulsesim.Period(200), Bounce: 3 * time.Millisecond, Bounces: 1}, // bounce overlaps the next clean edge
		{Period: time.Second, Pulses: -1},
	} {
		if tr.Validate() == nil {
			t.Errorf("%+v accepted", tr)
		}
		if n := len(slices.Collect(tr.Edges())); n != 0 {
			t.Errorf("invalid train yields %d edges", n)
		}
	}
}

func TestTogglesAndPlayIntoVirtualSim(t *testing.T) {
	ctx := context.Background()
	door := pulsesim.Toggles{Start: t0, Initial: gpio.Low, Bounce: 10 * time.Millisecond, Bounces: 2, Seed: 1, Steps: []pulsesim.Step{
		{After: 10 * time.Second, Level: gpio.High},
		{After: 40 * time.Second, Level: gpio.Low},
	}}
	if err := door.Validate(); err != nil {
		t.Fatal(err)
	}
	sim := gpiosim.New("DI2", gpiosim.Config{Virtual: true, Start: t0, Capacity: 3})
	played := make(chan int, 1)
	go func() {
		n, err := pulsesim.Play(ctx, sim, door.Edges())
		if err != nil {
			t.Error(err)
		}
		sim.End()
		played <- n
	}()
	l, err := sim.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var got []gpio.Edge
	for {
		e, err := l.WaitEdge(ctx, t0.Add(time.Minute))
		if err != nil {
			break
		}
		got = append(got, e)
	}
	if n := <-played; n != 10 || len(got) != 10 {
		t.Fatalf("played %d, read %d edges; want 10", n, len(got))
	}
	if got[0] != (gpio.Edge{Level: gpio.High, Time: t0.Add(10 * time.Second)}) || got[5] != (gpio.Edge{Level: gpio.Low, Time: t0.Add(40 * time.Second)}) {
		t.Fatalf("clean edges %v, %v", got[0], got[5])
	}
	if got[9].Level != gpio.Low {
		t.Fatal("door does not end closed")
	}
	bad := pulsesim.Toggles{Initial: gpio.Low, Steps: []pulsesim.Step{{After: time.Second, Level: gpio.Low}}}
	if bad.Validate() == nil {
		t.Fatal("a step that does not change the level was accepted")
	}
}

// On the wall clock (the demo), an endless train is played ahead of time
// and each edge is delivered once its time has come, with its exact
// timestamp.
func TestEndlessTrainOnWallClock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sim := gpiosim.New("DI1", gpiosim.Config{Capacity: 16})
	start := time.Now().Add(10 * time.Millisecond)
	tr := pulsesim.Train{Start: start, Period: 20 * time.Millisecond, Bounce: 2 * time.Millisecond, Bounces: 1, Seed: 3}
	playCtx, stopPlay := context.WithCancel(ctx)
	played := make(chan error, 1)
	go func() {
		_, err := pulsesim.Play(playCtx, sim, tr.Edges())
		played <- err
	}()
	l, err := sim.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	want := slices.Collect(func(yield func(gpio.Edge) bool) {
		n := 0
		for e := range tr.Edges() {
			if n == 40 || !yield(e) {
				return
			}
			n++
		}
	})
	for i, w := range want {
		e, err := l.WaitEdge(ctx, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if e != w {
			t.Fatalf("edge %d = %v, want %v", i, e, w)
		}
		if now := time.Now(); now.Before(e.Time) {
			t.Fatalf("edge %d delivered at %v, before its time %v", i, now, e.Time)
		}
	}
	stopPlay()
	if err := <-played; !errors.Is(err, context.Canceled) {
		t.Fatalf("endless Play ended with %v", err)
	}
}
