package badgerq_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/townlink/townlink/internal/testkit"
	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/badgerq"
)

// helperEnv selects what TestHelperProcess does when the test binary is
// re-executed as a child: "crash:<dir>:<round>", "diskfull:<dir>" or
// "mem:<profile>:<n>:<dir>" or "overflow:<dir>:<round>".
const helperEnv = "TOWNLINK_BADGERQ_HELPER"

// TestHelperProcess is not a test: it is the child of TestCrashRecovery,
// TestDiskFull and TestBacklogMemory. Without the env var it only checks that it is idle.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return
	}
	kind, arg, _ := strings.Cut(mode, ":")
	var err error
	switch kind {
	case "crash":
		err = crashChild(arg)
	case "diskfull":
		err = diskFullChild(arg)
	case "mem":
		err = memChild(arg)
	case "overflow":
		err = overflowChild(arg)
	default:
		err = fmt.Errorf("unknown helper mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stdout, "ERR", err)
		os.Exit(3)
	}
	os.Exit(0)
}

// execWrapperEnv names a program that runs the child test binary, e.g.
// qemu-arm-static when this binary is an armv7 build run under qemu-user
// without binfmt_misc (packaging/cross_test.go).
const execWrapperEnv = "TOWNLINK_TEST_EXEC_WRAPPER"

func childCmd(t *testing.T, mode string) *exec.Cmd {
	args := []string{os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1"}
	if w := os.Getenv(execWrapperEnv); w != "" {
		args = append([]string{w}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	return cmd
}

// crashChild appends to "telemetry" from 4 goroutines (batches of 1–5)
// and to the sealed "evidence" stream from one, drains and acks telemetry
// in order, and prints "A <payload>" after every Append that returned nil
// and "K <seq> <payload>" before every Ack, until it is killed.
func crashChild(arg string) error {
	dir, round, _ := strings.Cut(arg, ":")
	db, err := badgerq.Open(badgerq.Options{Dir: dir})
	if err != nil {
		return err
	}
	tel, err := db.Stream("telemetry", badgerq.StreamOptions{})
	if err != nil {
		return err
	}
	ev, err := db.Stream("evidence", badgerq.StreamOptions{Seal: toySeal})
	if err != nil {
		return err
	}
	var outMu sync.Mutex
	say := func(s string) { // one unbuffered write per line: nothing waits in a buffer when killed
		outMu.Lock()
		os.Stdout.WriteString(s + "\n")
		outMu.Unlock()
	}
	ctx := context.Background()
	errc := make(chan error, 8)
	// READY before any goroutine can report: the parent reads it first.
	say("READY")
	for g := range 4 {
		go func() {
			for i := 0; ; i++ {
				n := 1 + (i+g)%5
				data := make([][]byte, n)
				for j := range data {
					data[j] = fmt.Appendf(nil, "t-r%s-g%d-%d-%d", round, g, i, j)
				}
				if err := tel.Append(ctx, data...); err != nil {
					errc <- err
					return
				}
				for _, d := range data {
					say("A " + string(d))
				}
			}
		}()
	}
	go func() {
		for i := 0; ; i++ {
			p := fmt.Sprintf("e-r%s-%d", round, i)
			if err := ev.Append(ctx, []byte(p)); err != nil {
				errc <- err
				return
			}
			say("A " + p)
		}
	}()
	go func() {
		var after uint64
		for {
			es, err := tel.Peek(ctx, after, 50)
			if err != nil {
				errc <- err
				return
			}
			// Ack only part of what is there, so a backlog stays behind.
			es = es[:max(1, len(es)/3)]
			seqs := make([]uint64, len(es))
			for i, e := range es {
				seqs[i] = e.Seq
				say("K " + strconv.FormatUint(e.Seq, 10) + " " + string(e.Data))
			}
			if err := tel.Ack(seqs...); err != nil {
				errc <- err
				return
			}
			after = seqs[len(seqs)-1]
			time.Sleep(time.Millisecond)
		}
	}()
	return <-errc
}

func readAll(t *testing.T, q *badgerq.Queue) []uplink.Entry {
	t.Helper()
	var all []uplink.Entry
	var after uint64
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		es, err := q.Peek(ctx, after, 10000)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return all
		}
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, es...)
		after = es[len(es)-1].Seq
	}
}

// TestCrashRecovery kill -9s a child that appends and acks at full speed,
// at a random moment, several rounds in a row, and checks after each:
// every Append that returned nil is present (or was acked), seqs are
// contiguous from the first unacked entry, the evidence chain is intact
// and the next Append continues right after the last committed seq.
func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	rounds := 5
	if testing.Short() {
		rounds = 2
	}
	rng := rand.New(rand.NewPCG(testkit.Seed(t), 7))
	var telLast uint64                 // last telemetry seq committed, across rounds
	ackedEver := make(map[uint64]bool) // telemetry seqs the child (may have) acked
	for round := range rounds {
		cmd := childCmd(t, fmt.Sprintf("crash:%s:%d", dir, round))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(stdout)
		if l, err := r.ReadString('\n'); l != "READY\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: child did not get ready: %q, %v; stderr %s", round, l, err, stderr.String())
		}
		lines := make(chan []string, 1)
		go func() {
			var ls []string
			for {
				l, err := r.ReadString('\n')
				if err != nil { // a torn last line (no newline) is dropped
					lines <- ls
					return
				}
				ls = append(ls, strings.TrimSuffix(l, "\n"))
			}
		}()
		run := time.Duration(50+rng.IntN(1000)) * time.Millisecond
		time.Sleep(run)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		out := <-lines
		werr := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child did not die by SIGKILL (%v); stdout tail %q; stderr %s", round, werr, tail(out, 5), stderr.String())
		}
		appended := make(map[string]bool)
		ackedPayload := make(map[string]bool)
		var maxAcked uint64
		for _, l := range out {
			switch {
			case strings.HasPrefix(l, "A "):
				appended[l[2:]] = true
			case strings.HasPrefix(l, "K "):
				seqStr, p, _ := strings.Cut(l[2:], " ")
				s, err := strconv.ParseUint(seqStr, 10, 64)
				if err != nil {
					t.Fatalf("round %d: bad line %q", round, l)
				}
				ackedEver[s] = true
				ackedPayload[p] = true
				maxAcked = max(maxAcked, s)
			default:
				t.Fatalf("round %d: child said %q", round, l)
			}
		}

		db := openDB(t, dir)
		tel, err := db.Stream("telemetry", badgerq.StreamOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ev, err := db.Stream("evidence", badgerq.StreamOptions{Seal: toySeal})
		if err != nil {
			t.Fatal(err)
		}
		telEs, evEs := readAll(t, tel), readAll(t, ev)
		present := make(map[string]bool)
		for i, e := range telEs {
			if i > 0 && e.Seq != telEs[i-1].Seq+1 {
				t.Fatalf("round %d: telemetry hole: seq %d follows %d", round, e.Seq, telEs[i-1].Seq)
			}
			present[string(e.Data)] = true
		}
		telStats := tel.Stats()
		// Telemetry: whatever is absent below the first present seq or above
		// the last present one, up to LastSeq, must have been acked.
		lo, hi := uint64(1), telStats.LastSeq
		if len(telEs) > 0 {
			for s := lo; s < telEs[0].Seq; s++ {
				if !ackedEver[s] {
					t.Fatalf("round %d: telemetry seq %d is gone but was never acked (first present %d)", round, s, telEs[0].Seq)
				}
			}
			lo = telEs[len(telEs)-1].Seq + 1
		}
		for s := lo; s <= hi; s++ {
			if !ackedEver[s] {
				t.Fatalf("round %d: telemetry seq %d ≤ LastSeq %d is gone but was never acked", round, s, hi)
			}
		}
		if want := max(telLast, maxAcked, lo-1); telStats.LastSeq != want {
			t.Fatalf("round %d: telemetry LastSeq %d, want %d (max of present, acked and earlier rounds)", round, telStats.LastSeq, want)
		}
		if telStats.Backlog != int64(len(telEs)) {
			t.Fatalf("round %d: telemetry Stats %+v, but %d entries present", round, telStats, len(telEs))
		}
		// Evidence is never acked: 1..n, contiguous and chained.
		for i, e := range evEs {
			if e.Seq != uint64(i+1) {
				t.Fatalf("round %d: evidence entry %d has seq %d", round, i, e.Seq)
			}
		}
		evPayloads, head := verifyChain(t, evEs, nil)
		for _, p := range evPayloads {
			present[p] = true
		}
		if s := ev.Stats(); s.LastSeq != uint64(len(evEs)) {
			t.Fatalf("round %d: evidence LastSeq %d with %d entries present", round, s.LastSeq, len(evEs))
		}
		lost := 0
		for p := range appended {
			if present[p] || (strings.HasPrefix(p, "t-") && ackedPayload[p]) {
				continue
			}
			lost++
			if lost < 5 {
				t.Errorf("round %d: %q was appended (nil) but is missing", round, p)
			}
		}
		if lost > 0 {
			t.Fatalf("round %d: %d appends that returned nil are lost", round, lost)
		}

		// The next Append continues right after the last committed seq.
		if err := tel.Append(ctxT(t), []byte("parent")); err != nil {
			t.Fatal(err)
		}
		if err := ev.Append(ctxT(t), fmt.Appendf(nil, "parent-%d", round)); err != nil {
			t.Fatal(err)
		}
		telNew, err := tel.Peek(ctxT(t), telStats.LastSeq, 10)
		if err != nil || len(telNew) != 1 || telNew[0].Seq != telStats.LastSeq+1 || string(telNew[0].Data) != "parent" {
			t.Fatalf("round %d: parent's telemetry Append = %v, %v; want seq %d", round, telNew, err, telStats.LastSeq+1)
		}
		evNew, err := ev.Peek(ctxT(t), uint64(len(evEs)), 10)
		if err != nil || len(evNew) != 1 || evNew[0].Seq != uint64(len(evEs))+1 {
			t.Fatalf("round %d: parent's evidence Append = %v, %v; want seq %d", round, evNew, err, len(evEs)+1)
		}
		verifyChain(t, evNew, head) // the seal state survived the crash
		telLast = telStats.LastSeq + 1
		t.Logf("round %d: killed %v after ready: %d appends and %d acks reported; telemetry %d present up to seq %d, evidence %d",
			round, run, len(appended), len(ackedPayload), len(telEs), telLast, len(evNew)+len(evEs))
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func tail(ls []string, n int) []string { return ls[max(0, len(ls)-n):] }
