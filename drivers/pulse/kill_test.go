package pulse_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/pulse"
	"github.com/townlink/townlink/firmware-sim/pulsesim"
	"github.com/townlink/townlink/hardware/gpio"
	"github.com/townlink/townlink/hardware/gpiosim"
	"github.com/townlink/townlink/internal/testkit"
)

// The kill -9 child: the test binary re-executed with these variables set.
const (
	envChild  = "TOWNLINK_PULSE_CHILD" // the store directory
	envOut    = "TOWNLINK_PULSE_OUT"   // file of reported counts, one a line
	envPulses = "TOWNLINK_PULSE_PULSES"
	envSeed   = "TOWNLINK_PULSE_SEED"
	childDev  = "wm-kill"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(envChild); dir != "" {
		if err := child(dir); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child counts a 1 kHz bounced pulse train on a virtual line (endless, or
// TOWNLINK_PULSE_PULSES pulses) and writes every reported count to the out
// file, one line each, after the driver saved it. It runs until killed or,
// for a finite train, until a reading after the train's end.
func child(dir string) error {
	pulses, _ := strconv.Atoi(os.Getenv(envPulses))
	seed, _ := strconv.ParseUint(os.Getenv(envSeed), 10, 64)
	out, err := os.OpenFile(os.Getenv(envOut), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	train := pulsesim.Train{Start: t0.Add(100 * time.Microsecond), Period: time.Millisecond, Pulses: pulses,
		Bounce: 200 * time.Microsecond, Bounces: 2, Seed: seed}
	sim := gpiosim.New("DI1", gpiosim.Config{Virtual: true, Start: t0, Level: gpio.Low})
	in := gpio.NewInput("DI1", sim.Open, gpio.InputConfig{Clock: sim.Now})
	defer in.Close()
	dev, err := pulse.New(pulse.Config{Device: childDev, Input: pulse.Counter, Debounce: 300 * time.Microsecond,
		Interval: 10 * time.Millisecond, Store: pulse.FileStore(dir)}, in)
	if err != nil {
		return err
	}
	go func() {
		if _, err := pulsesim.Play(ctx, sim, train.Edges()); err == nil {
			sim.End()
		}
	}()
	end := train.End()
	err = dev.Run(ctx, func(rd drivers.Reading) error {
		n, _ := rd.Values["count"].AsInt()
		if _, err := fmt.Fprintf(out, "%d\n", n); err != nil {
			return err
		}
		if pulses > 0 && rd.Time.After(end.Add(20*time.Millisecond)) {
			cancel()
		}
		return nil
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// readCounts reads the counts a child reported (a torn last line, if the
// kill came in the middle of a write, is not a report).
func readCounts(t *testing.T, path string) []uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		n, err := strconv.ParseUint(sc.Text(), 10, 64)
		if err != nil {
			t.Fatalf("%s: line %q", path, sc.Text())
		}
		out = append(out, n)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		out = out[:len(out)-1]
	}
	return out
}

func TestKill9ContinuesFromDurableCount(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: kill -9 of a counting child process, several rounds; make test runs it")
	}
	dir := t.TempDir()
	store := pulse.FileStore(filepath.Join(dir, "store"))
	rng := rand.New(rand.NewPCG(testkit.Seed(t), 1)) // the kill timing
	start := func(round, pulses int) (*exec.Cmd, string) {
		out := filepath.Join(dir, fmt.Sprintf("out-%d", round))
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envChild+"="+filepath.Join(dir, "store"), envOut+"="+out,
			envPulses+"="+strconv.Itoa(pulses), envSeed+"="+strconv.Itoa(round))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, out
	}
	var reported, stored uint64 // highest count reported so far; count stored after the last kill
	check := func(round int, counts []uint64) {
		t.Helper()
		if len(counts) == 0 {
			t.Fatalf("round %d: nothing reported", round)
		}
		if counts[0] < stored || counts[0] < reported {
			t.Fatalf("round %d: first count %d after a restart from stored %d (highest reported before: %d)", round, counts[0], stored, reported)
		}
		for i := 1; i < len(counts); i++ {
			if counts[i] < counts[i-1] {
				t.Fatalf("round %d: count went backwards: %d then %d", round, counts[i-1], counts[i])
			}
		}
		reported = counts[len(counts)-1]
	}
	const rounds = 4
	for round := range rounds {
		cmd, out := start(round, 0)
		// Let it report a few counts, then kill it at a random moment.
		deadline := time.Now().Add(30 * time.Second)
		for {
			if b, _ := os.ReadFile(out); bytes.Count(b, []byte("\n")) >= 3 {
				break
			}
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				t.Fatalf("round %d: child reported nothing in 30 s", round)
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		_ = cmd.Wait()
		counts := readCounts(t, out)
		check(round, counts)
		n, ok, err := store.Load(childDev)
		if err != nil || !ok {
			t.Fatalf("round %d: store after kill -9: %d %v %v", round, n, ok, err)
		}
		if n < reported {
			t.Fatalf("round %d: stored %d < last reported %d: a reported count was not durable", round, n, reported)
		}
		t.Logf("round %d: killed after %d readings; last reported %d, stored %d", round, len(counts), reported, n)
		stored = n
	}
	// A last run with a finite train: every one of its pulses is counted on
	// top of the stored count.
	const pulses = 3000
	cmd, out := start(rounds, pulses)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("final child: %v", err)
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("final child did not finish in 60 s")
	}
	counts := readCounts(t, out)
	check(rounds, counts)
	if want := stored + pulses; reported != want {
		t.Fatalf("final count %d, want stored %d + %d pulses = %d", reported, stored, pulses, want)
	}
	if n, _, _ := store.Load(childDev); n != reported {
		t.Fatalf("stored %d after a clean stop, want %d", n, reported)
	}
}
