package pulsesim_test

import (
	"bufio"
	"context"
	"errors"
	"iter"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/firmware-sim/pulsesim"
	"github.com/townlink/townlink/hardware/gpio"
	"github.com/townlink/townlink/hardware/gpiosim"
	"github.com/townlink/townlink/internal/testkit"
)

// serveBG runs srv.Serve until the returned stop; stop returns Serve's error.
func serveBG(t *testing.T, srv *pulsesim.Server, edges iter.Seq[gpio.Edge]) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, edges) }()
	var err error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			err = <-errc
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// dialLines connects a plain client and returns its messages, parsed by
// hardware/gpio (an independent formatter from the server's).
func dialLines(t *testing.T, path string) (<-chan gpio.Edge, net.Conn) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ch := make(chan gpio.Edge, 100000)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			e, ok, err := gpiosim.ParseMessage(sc.Bytes())
			if err != nil {
				t.Errorf("server sent %q: %v", sc.Text(), err)
				return
			}
			if ok {
				ch <- e
			}
		}
	}()
	return ch, c
}

func recv(t *testing.T, ch <-chan gpio.Edge) gpio.Edge {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("connection ended")
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
	}
	return gpio.Edge{}
}

func TestServerSendsStateThenEdgesAheadToEveryClient(t *testing.T) {
	path := filepath.Join(t.TempDir(), "DI1")
	before := time.Now()
	srv, err := pulsesim.Listen(path, pulsesim.ServerConfig{Level: gpio.High, Lead: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := dialLines(t, path)
	b, _ := dialLines(t, path)
	// The clients connect before Serve accepts: they wait in the backlog.
	t1 := time.Now().Add(150 * time.Millisecond)
	edges := []gpio.Edge{{Level: gpio.Low, Time: t1}, {Level: gpio.High, Time: t1.Add(time.Millisecond)}}
	serveBG(t, srv, slices.Values(edges))

	for name, ch := range map[string]<-chan gpio.Edge{"a": a, "b": b} {
		st := recv(t, ch)
		if st.Level != gpio.High || st.Time.Before(before.Truncate(time.Microsecond)) || st.Time.After(time.Now()) {
			t.Errorf("client %s: state line %v, want High since Listen", name, st)
		}
		for _, want := range edges {
			if e := recv(t, ch); e.Level != want.Level || !e.Time.Equal(want.Time) {
				t.Errorf("client %s: edge %v, want %v", name, e, want)
			}
		}
	}
	// The edges were sent ahead; a client connecting before their time
	// gets a state line that is not ahead of the clock, then the edges.
	if time.Now().Before(t1) {
		c, _ := dialLines(t, path)
		if st := recv(t, c); st.Level != gpio.High || st.Time.After(t1) {
			t.Errorf("early client: state %v, want High before %v", st, t1)
		}
		if e := recv(t, c); !e.Time.Equal(t1) || e.Level != gpio.Low {
			t.Errorf("early client: first edge %v, want Low at %v", e, t1)
		}
	}
	// Once their time has passed, a new client gets only the state.
	testkit.WaitFor(t, "the edges' time", func() bool { return time.Now().After(t1.Add(time.Millisecond)) })
	late, _ := dialLines(t, path)
	if st := recv(t, late); st.Level != gpio.High || !st.Time.Equal(edges[1].Time) {
		t.Errorf("late client: state %v, want High since %v", st, edges[1].Time)
	}
	if st := srv.Stats(); st.Edges != 2 || st.Level != gpio.High || st.Accepted < 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestServerForgetsClientsThatHangUpAndRemovesItsSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "DI1")
	srv, err := pulsesim.Listen(path, pulsesim.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	stop := serveBG(t, srv, func(func(gpio.Edge) bool) {})
	ch, c := dialLines(t, path)
	recv(t, ch)
	testkit.WaitFor(t, "one client", func() bool { return srv.Stats().Clients == 1 })
	c.Close()
	testkit.WaitFor(t, "the client to go", func() bool { return srv.Stats().Clients == 0 })
	if err := stop(); err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind: %v", err)
	}
	if err := srv.Serve(context.Background(), nil); err == nil {
		t.Fatal("second Serve succeeded")
	}
}

func TestServerDropsAClientThatFallsBehind(t *testing.T) {
	path := filepath.Join(t.TempDir(), "DI1")
	srv, err := pulsesim.Listen(path, pulsesim.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("unix", path) // never reads
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Far more edges than the socket and ClientBuffer hold, all due now.
	tr := pulsesim.Train{Start: time.Now().Add(-time.Hour), Period: 10 * time.Microsecond, Pulses: 50000}
	serveBG(t, srv, func(yield func(gpio.Edge) bool) {
		testkit.WaitFor(t, "the client", func() bool { return srv.Stats().Accepted == 1 })
		for e := range tr.Edges() {
			if !yield(e) {
				return
			}
		}
	})
	testkit.WaitFor(t, "the slow client to be dropped", func() bool { return srv.Stats().Dropped == 1 })
	if st := srv.Stats(); st.Clients != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestServerRefuses(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "DI1")
	if err := os.WriteFile(file, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := pulsesim.Listen(file, pulsesim.ServerConfig{}); !errors.Is(err, pulsesim.ErrServe) || !strings.Contains(err.Error(), "is not a socket") {
		t.Fatalf("Listen over a file = %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Fatal("the file was touched")
	}
	if _, err := pulsesim.Listen("/tmp/"+strings.Repeat("x", 120), pulsesim.ServerConfig{}); !errors.Is(err, pulsesim.ErrServe) || !strings.Contains(err.Error(), "Unix sockets allow 107") {
		t.Fatalf("Listen on a long path = %v", err)
	}

	// A stale socket (a simulator killed with -9) is replaced.
	stale := filepath.Join(dir, "DI2")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	srv, err := pulsesim.Listen(stale, pulsesim.ServerConfig{})
	if err != nil {
		t.Fatalf("Listen over a stale socket = %v", err)
	}

	// An edge that does not change the level stops Serve.
	bad := []gpio.Edge{{Level: gpio.High, Time: time.Now()}, {Level: gpio.High, Time: time.Now()}}
	stop := serveBG(t, srv, slices.Values(bad))
	testkit.WaitFor(t, "Serve to fail", func() bool { return srv.Stats().Edges == 1 })
	time.Sleep(10 * time.Millisecond)
	if err := stop(); !errors.Is(err, pulsesim.ErrServe) || !strings.Contains(err.Error(), "but the line is already High") {
		t.Fatalf("Serve with a repeated level = %v", err)
	}
}

func TestTrafficIsPoissonOnePulsePerVehicle(t *testing.T) {
	tf := pulsesim.Traffic{Start: t0, Rate: 0.5, Occupancy: 300 * time.Millisecond, Gap: 100 * time.Millisecond,
		Vehicles: 20000, Bounce: time.Millisecond, Bounces: 1, Seed: 3}
	if err := tf.Validate(); err != nil {
		t.Fatal(err)
	}
	edges := slices.Collect(tf.Edges())
	if len(edges) != 20000*2*3 {
		t.Fatalf("%d edges, want %d", len(edges), 20000*2*3)
	}
	lvl := gpio.Low
	var lead, trail time.Time
	for i, e := range edges {
		if e.Level == lvl || (i > 0 && e.Time.Before(edges[i-1].Time)) {
			t.Fatalf("edge %d %v after %v", i, e, edges[i-1])
		}
		lvl = e.Level
		switch i % 6 {
		case 0: // a vehicle arrives
			if !trail.IsZero() && e.Time.Sub(trail) < 100*time.Millisecond {
				t.Fatalf("vehicle %d %v after the previous left", i/6, e.Time.Sub(trail))
			}
			lead = e.Time
		case 3: // it leaves
			if d := e.Time.Sub(lead); d != 300*time.Millisecond {
				t.Fatalf("vehicle %d occupied the loop %v", i/6, d)
			}
			trail = e.Time
		default: // bounce
			if d := e.Time.Sub(edges[i-i%3].Time); d <= 0 || d > time.Millisecond {
				t.Fatalf("bounce edge %d %v after its clean edge", i, d)
			}
		}
	}
	// 20000 arrivals at 0.5/s take about 40000 s (± 850 s at 3 sigma; a
	// vehicle held back by the gap adds at most 0.4 s).
	span := edges[len(edges)-3].Time.Sub(t0).Seconds()
	if span < 39000 || span > 41500 {
		t.Fatalf("20000 vehicles in %.0f s, want about 40000 (0.5/s)", span)
	}
	if !slices.Equal(edges[:60], slices.Collect(tf.Edges())[:60]) {
		t.Fatal("same seed, different traffic")
	}
	for name, bad := range map[string]pulsesim.Traffic{
		"no rate":       {Rate: 0},
		"bounce > gap":  {Rate: 1, Gap: time.Millisecond, Bounce: 2 * time.Millisecond, Bounces: 1},
		"negative":      {Rate: 1, Vehicles: -1},
		"absurd rate":   {Rate: 1e6},
		"bounce > high": {Rate: 1, Occupancy: time.Millisecond, Bounce: 2 * time.Millisecond, Bounces: 1},
	} {
		if err := bad.Validate(); !errors.Is(err, pulsesim.ErrConfig) {
			t.Errorf("%s: Validate = %v", name, err)
		}
		if n := len(slices.Collect(bad.Edges())); n != 0 {
			t.Errorf("%s: %d edges from an invalid Traffic", name, n)
		}
	}
}
