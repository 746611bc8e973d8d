package gpiosim_test

// Dial against the real other end: firmware-sim/pulsesim's Server, and
// drivers/pulse counting over the socket.

import (
	"context"
	"errors"
	"iter"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/pulse"
	"github.com/townlink/townlink/firmware-sim/pulsesim"
	"github.com/townlink/townlink/hardware/gpio"
	"github.com/townlink/townlink/hardware/gpiosim"
)

// Under load the simulator's timers and the reader can each run hundreds
// of milliseconds late; these tests check exact timestamps and exact
// counts, not timing, so the simulator sends edges well ahead (its default
// lead, a second) and starts its train well after the reader connected.
const afterStart = time.Second // between the reader's connection and the first edge

// serve runs a Server until the test (or stop) ends it.
func serve(t *testing.T, srv *pulsesim.Server, edges iter.Seq[gpio.Edge]) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, edges); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// afterClient is edges made once srv has accepted a connection, starting
// after that: the train does not begin before the reader listens.
func afterClient(ctx context.Context, srv *pulsesim.Server, after time.Duration, mk func(start time.Time) iter.Seq[gpio.Edge]) iter.Seq[gpio.Edge] {
	return func(yield func(gpio.Edge) bool) {
		for srv.Stats().Accepted == 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
		for e := range mk(time.Now().Add(after)) {
			if !yield(e) {
				return
			}
		}
	}
}

func TestRemoteDeliversTheSimulatorsEdgesExactly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "DI1")
	srv, err := pulsesim.Listen(path, pulsesim.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	wantc := make(chan []gpio.Edge, 1)
	serve(t, srv, afterClient(ctx, srv, afterStart, func(start time.Time) iter.Seq[gpio.Edge] {
		tr := pulsesim.Train{Start: start, Period: 20 * time.Millisecond, Pulses: 25, Bounce: 2 * time.Millisecond, Bounces: 3, Seed: 9}
		wantc <- slices.Collect(tr.Edges())
		return tr.Edges()
	}))
	l, err := gpiosim.Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var got []gpio.Edge
	for len(got) < 25*2*7 {
		e, err := l.WaitEdge(ctx, time.Time{})
		if err != nil {
			t.Fatalf("after %d edges: %v", len(got), err)
		}
		got = append(got, e)
	}
	want := <-wantc
	for i := range want {
		if got[i].Level != want[i].Level || !got[i].Time.Equal(want[i].Time) {
			t.Fatalf("edge %d = %v, want %v", i, got[i], want[i])
		}
	}
	if st := srv.Stats(); st.Edges != len(want) || st.Clients != 1 || st.Dropped != 0 {
		t.Fatalf("server stats %+v", st)
	}
}

// counter runs a pulse counter on the remote line at path and sends every
// count it reports.
func counter(t *testing.T, ctx context.Context, path string, in *gpio.Input) <-chan int64 {
	t.Helper()
	dev, err := pulse.New(pulse.Config{Device: "water-1", Input: pulse.Counter, Debounce: 5 * time.Millisecond,
		Interval: 100 * time.Millisecond, Store: pulse.FileStore(t.TempDir())}, in)
	if err != nil {
		t.Fatal(err)
	}
	counts := make(chan int64, 1000)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := dev.Run(ctx, func(rd drivers.Reading) error {
			n, _ := rd.Values["count"].AsInt()
			select {
			case counts <- n:
			default:
				t.Error("counts not read")
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	}()
	t.Cleanup(wg.Wait)
	return counts
}

// waitCount reads counts until one is want; a count above want fails.
func waitCount(t *testing.T, counts <-chan int64, want int64) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	last := int64(-1)
	for {
		select {
		case n := <-counts:
			last = n
			if n > want {
				t.Fatalf("count %d, want %d: a bounce was counted", n, want)
			}
			if n == want {
				return
			}
		case <-timeout:
			t.Fatalf("count never reached %d (last %d)", want, last)
		}
	}
}

func TestPulseCountsARemoteTrainWithBounceExactly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "DI1")
	srv, err := pulsesim.Listen(path, pulsesim.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	pulses := int64(150) // 3 s of a 50 Hz train
	if testing.Short() {
		pulses = 30
	}
	tr := pulsesim.Train{Period: 20 * time.Millisecond, High: 10 * time.Millisecond, Pulses: int(pulses),
		Bounce: 3 * time.Millisecond, Bounces: 3, Seed: 4}
	serve(t, srv, afterClient(ctx, srv, afterStart, func(start time.Time) iter.Seq[gpio.Edge] {
		tr.Start = start
		return tr.Edges()
	}))
	in := gpio.NewInput("DI1", func(context.Context) (gpio.Line, error) { return gpiosim.Dial(path) }, gpio.InputConfig{})
	defer in.Close()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	counts := counter(t, runCtx, path, in)
	waitCount(t, counts, pulses)
	// Reports go on after the train: the count stays.
	for range 3 {
		if n := <-counts; n != pulses {
			t.Fatalf("count %d after the train, want %d", n, pulses)
		}
	}
	if st := srv.Stats(); st.Edges != int(pulses)*2*7 || in.LineErrors() != 0 {
		t.Fatalf("server played %d edges (want %d), line errors %d", st.Edges, int(pulses)*2*7, in.LineErrors())
	}
}

func TestRemoteInputReconnectsWhenTheSimulatorRestarts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "DI1")
	train := func(seed uint64) func(time.Time) iter.Seq[gpio.Edge] {
		return func(start time.Time) iter.Seq[gpio.Edge] {
			return pulsesim.Train{Start: start, Period: 20 * time.Millisecond, Pulses: 20, Bounce: 2 * time.Millisecond, Bounces: 2, Seed: seed}.Edges()
		}
	}
	srv1, err := pulsesim.Listen(path, pulsesim.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	stop1 := serve(t, srv1, afterClient(ctx, srv1, afterStart, train(1)))

	in := gpio.NewInput("DI1", func(context.Context) (gpio.Line, error) { return gpiosim.Dial(path) },
		gpio.InputConfig{Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	defer in.Close()
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	counts := counter(t, runCtx, path, in)
	waitCount(t, counts, 20)

	// The simulator stops (its socket goes) and starts again.
	stop1()
	for in.LineErrors() == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the Input saw no line error after the simulator stopped")
		case <-time.After(5 * time.Millisecond):
		}
	}
	srv2, err := pulsesim.Listen(path, pulsesim.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, srv2, afterClient(ctx, srv2, afterStart, train(2)))
	waitCount(t, counts, 40)
	if st := srv2.Stats(); st.Accepted != 1 || st.Edges != 20*2*5 {
		t.Fatalf("second simulator: %+v", st)
	}
}
