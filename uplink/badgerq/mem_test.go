package badgerq_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/townlink/townlink/uplink/badgerq"
)

// TestBacklogMemory fills a backlog in a fresh child process per profile,
// closes, reopens (recovery scans the backlog's keys) and reports the
// child's memory (/proc/self/status) and disk use. By default it runs a
// small backlog as a check that recovery counts it; TOWNLINK_MEM=1 runs
// the 1M-entry measurement (about a minute).
func TestBacklogMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: fills and recovers backlogs in child processes; make test runs it")
	}
	n := 20_000
	if os.Getenv("TOWNLINK_MEM") == "1" {
		n = 1_000_000
	}
	for _, profile := range []string{"lowmem", "badgerdefault"} {
		dir := t.TempDir()
		cmd := childCmd(t, fmt.Sprintf("mem:%s:%d:%s", profile, n, dir))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: child failed: %v\n%s", profile, err, out)
		}
		var reported int
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "MEM ") {
				reported++
				t.Logf("%s, %d entries of 200 B: %s", profile, n, l[4:])
			}
		}
		if reported != 2 {
			t.Fatalf("%s: child reported %d measurements, want 2:\n%s", profile, reported, out)
		}
	}
}

func memChild(arg string) error {
	parts := strings.SplitN(arg, ":", 3)
	if len(parts) != 3 {
		return fmt.Errorf("mem helper: bad arg %q", arg)
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		return err
	}
	o := badgerq.Options{Dir: parts[2]}
	if parts[0] == "badgerdefault" {
		o.Profile = badgerq.BadgerDefault()
	}
	db, err := badgerq.Open(o)
	if err != nil {
		return err
	}
	q, err := db.Stream("telemetry", badgerq.StreamOptions{})
	if err != nil {
		return err
	}
	ctx := context.Background()
	start := time.Now()
	const writers, batch = 4, 1000
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			data := make([][]byte, batch)
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := w * batch; i < n; i += writers * batch {
				for j := range data {
					// About as compressible as a CBOR record: text keys, random values.
					data[j] = make([]byte, 200)
					copy(data[j], fmt.Sprintf("reading-%012d dev=meter-0042 kind=power vals=energy_kwh,voltage_a_v ", i+j))
					for k := 100; k < 200; k++ {
						data[j][k] = byte(rng.Uint32())
					}
				}
				if err := q.Append(ctx, data[:min(batch, n-i)]...); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	fill := time.Since(start)
	fmt.Printf("MEM after filling (%v, %.0f entries/s): %s, disk %s\n", fill.Round(time.Millisecond),
		float64(n)/fill.Seconds(), memNow(), diskUse(o.Dir))
	if err := db.Close(); err != nil {
		return err
	}
	start = time.Now()
	db, err = badgerq.Open(o)
	if err != nil {
		return err
	}
	defer db.Close()
	q, err = db.Stream("telemetry", badgerq.StreamOptions{})
	if err != nil {
		return err
	}
	if s := q.Stats(); s.Backlog != int64(n) || s.LastSeq != uint64(n) || s.FirstSeq != 1 {
		return fmt.Errorf("after reopen: Stats %+v, want a backlog of %d", s, n)
	}
	es, err := q.Peek(ctx, uint64(n)-1, 10)
	if err != nil || len(es) != 1 || es[0].Seq != uint64(n) || !strings.HasPrefix(string(es[0].Data), "reading-") {
		return fmt.Errorf("after reopen: last entry = %v, %v", es, err)
	}
	fmt.Printf("MEM after reopen (recovery %v) holding the backlog: %s\n", time.Since(start).Round(time.Millisecond), memNow())
	return nil
}

// memNow reads the process's resident memory (after a GC) and peak.
func memNow() string {
	runtime.GC()
	debug.FreeOSMemory()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var fields []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		switch k {
		case "VmRSS", "RssAnon", "RssFile", "VmHWM":
			fields = append(fields, k+" "+strings.Join(strings.Fields(v), " "))
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fields = append(fields, fmt.Sprintf("GoHeap %d MB", ms.HeapInuse>>20))
	return strings.Join(fields, ", ")
}

// diskUse is the space the directory's files really take and their
// apparent size (sparse preallocations included).
func diskUse(dir string) string {
	var used, apparent int64
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil {
			used += st.Blocks * 512
			apparent += st.Size
		}
		return nil
	})
	return fmt.Sprintf("%d MB used (%d MB apparent)", used>>20, apparent>>20)
}
