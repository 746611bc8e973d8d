package badgerq_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/townlink/townlink/internal/testkit"
	"github.com/townlink/townlink/uplink/badgerq"
	"github.com/townlink/townlink/uplink/wire"
)

// Quotas of the overflow crash test: telemetry and events overflow their
// own quotas all the time, and alarms and evidence (never dropped, never
// acked here) push the database quota so that telemetry and events are
// discarded for them too.
var overflowQuotas = map[string]int64{wire.StreamTelemetry: 64 << 10, wire.StreamEvents: 32 << 10}

const overflowDBQuota = 320 << 10

// overflowChild appends wire records to all four streams at once, over
// quota, while it drains and acks part of telemetry, and slowly acks
// alarms and evidence from their heads. It prints
// "A <stream> <ts>" after every Append that returned nil, "Q <stream>"
// after an ErrQuota, and "K <stream> <seq> <hex record>" before every Ack,
// until it is killed.
func overflowChild(arg string) error {
	dir, roundStr, _ := strings.Cut(arg, ":")
	round, err := strconv.Atoi(roundStr)
	if err != nil {
		return err
	}
	db, err := badgerq.Open(badgerq.Options{Dir: dir, Quota: overflowDBQuota})
	if err != nil {
		return err
	}
	qs := map[string]*badgerq.Queue{}
	for _, s := range recordStreams {
		q, err := db.Stream(s, streamOpts(s, overflowQuotas[s]))
		if err != nil {
			return err
		}
		qs[s] = q
	}
	var outMu sync.Mutex
	say := func(s string) {
		outMu.Lock()
		os.Stdout.WriteString(s + "\n")
		outMu.Unlock()
	}
	ctx := context.Background()
	errc := make(chan error, 8)
	writer := func(stream string, g, batch int, pause time.Duration) {
		var err error
		for i := 0; ; i++ {
			n := 1 + (i+g)%batch
			data := make([][]byte, n)
			ts := make([]int, n)
			for j := range data {
				ts[j] = round<<40 | g<<32 | i<<8 | j
				if data[j], err = encodeRec(stream, ts[j]); err != nil {
					errc <- err
					return
				}
			}
			err = qs[stream].Append(ctx, data...)
			switch {
			case errors.Is(err, badgerq.ErrQuota):
				say("Q " + stream)
			case err != nil:
				errc <- err
				return
			default:
				for _, t := range ts {
					say(fmt.Sprintf("A %s %d", stream, 1_700_000_000_000+int64(t)))
				}
			}
			if pause > 0 {
				time.Sleep(pause)
			}
		}
	}
	// READY before any writer can report: the parent reads it first.
	say("READY")
	go writer(wire.StreamTelemetry, 0, 5, 0)
	go writer(wire.StreamTelemetry, 1, 5, 0)
	go writer(wire.StreamEvents, 2, 3, 0)
	go writer(wire.StreamAlarms, 3, 2, time.Millisecond)
	go writer(wire.StreamEvidence, 4, 2, time.Millisecond)
	go func() {
		tel := qs[wire.StreamTelemetry]
		var after uint64
		for {
			es, err := tel.Peek(ctx, after, 50)
			if err != nil {
				errc <- err
				return
			}
			es = es[:max(1, len(es)/3)]
			seqs := make([]uint64, len(es))
			for i, e := range es {
				seqs[i] = e.Seq
				say(fmt.Sprintf("K %s %d %x", wire.StreamTelemetry, e.Seq, e.Data))
			}
			if err := tel.Ack(seqs...); err != nil {
				errc <- err
				return
			}
			after = seqs[len(seqs)-1]
			time.Sleep(10 * time.Millisecond)
		}
	}()
	// Alarms and evidence drain slowly, from the head, so that the database
	// quota is sometimes full and sometimes not.
	for _, s := range []string{wire.StreamAlarms, wire.StreamEvidence} {
		go func() {
			q := qs[s]
			for {
				es, err := q.Peek(ctx, 0, 10)
				if err != nil {
					errc <- err
					return
				}
				seqs := make([]uint64, len(es))
				for i, e := range es {
					seqs[i] = e.Seq
					say(fmt.Sprintf("K %s %d %x", s, e.Seq, e.Data))
				}
				if err := q.Ack(seqs...); err != nil {
					errc <- err
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	return <-errc
}

// TestCrashDuringOverflow kill -9s a child that keeps every stream over
// quota, several rounds in a row, and checks after each reopen that every
// seq of every stream is present, acked, or covered by exactly one gap
// record; that alarms and evidence lost nothing (every Append that
// returned nil is there, the chain verifies); and that quotas hold.
func TestCrashDuringOverflow(t *testing.T) {
	dir := t.TempDir()
	rounds := 4
	if testing.Short() {
		rounds = 2
	}
	rng := rand.New(rand.NewPCG(testkit.Seed(t), 11))
	acked := map[string]map[uint64]bool{}
	ackedGaps := map[string]map[uint64]wire.Range{}
	ackedTS := map[int64]bool{} // alarms and evidence records acked
	appended := map[string]map[int64]bool{}
	for _, s := range recordStreams {
		acked[s], ackedGaps[s], appended[s] = map[uint64]bool{}, map[uint64]wire.Range{}, map[int64]bool{}
	}
	var refusals int
	for round := range rounds {
		cmd := childCmd(t, fmt.Sprintf("overflow:%s:%d", dir, round))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReaderSize(stdout, 1<<16)
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
				if err != nil {
					lines <- ls
					return
				}
				ls = append(ls, strings.TrimSuffix(l, "\n"))
			}
		}()
		run := time.Duration(300+rng.IntN(900)) * time.Millisecond
		time.Sleep(run)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		out := <-lines
		werr := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child did not die by SIGKILL (%v); stdout tail %q; stderr %s", round, werr, tail(out, 5), stderr.String())
		}
		for _, l := range out {
			f := strings.Fields(l)
			switch {
			case len(f) == 3 && f[0] == "A":
				ts, err := strconv.ParseInt(f[2], 10, 64)
				if err != nil {
					t.Fatalf("bad line %q", l)
				}
				appended[f[1]][ts] = true
			case len(f) == 2 && f[0] == "Q":
				refusals++
			case len(f) == 4 && f[0] == "K":
				seq, err1 := strconv.ParseUint(f[2], 10, 64)
				b, err2 := hex.DecodeString(f[3])
				if err1 != nil || err2 != nil {
					t.Fatalf("bad line %q", l)
				}
				acked[f[1]][seq] = true
				if rec, err := wire.DecodeRecord(b); err == nil {
					if f[1] == wire.StreamAlarms || f[1] == wire.StreamEvidence {
						ackedTS[rec.TS] = true
					}
					if from, to, ok := wire.GapRange(rec); ok {
						ackedGaps[f[1]][seq] = wire.Range{From: from, To: to}
					}
				}
			default:
				t.Fatalf("round %d: child said %q", round, l)
			}
		}

		d := openQuotaDB(t, dir, badgerq.Options{Quota: overflowDBQuota}, overflowQuotas)
		var total int64
		summary := []string{}
		for _, s := range recordStreams {
			q := d.q[s]
			st := q.Stats()
			total += st.Bytes
			if quota := overflowQuotas[s]; quota > 0 && st.Bytes > quota {
				t.Errorf("round %d: %s holds %d bytes, quota %d", round, s, st.Bytes, quota)
			}
			c := readStream(t, q)
			// A gap record that was acked is delivered: it covers its range
			// even though it is gone (or back, if the ack was lost).
			extra := map[uint64]wire.Range{}
			for gs, rg := range ackedGaps[s] {
				if _, back := c.present[gs]; !back {
					extra[gs] = rg
				}
			}
			covered := checkCoverage(t, fmt.Sprintf("round %d %s", round, s), c, acked[s], extra)
			if s == wire.StreamAlarms || s == wire.StreamEvidence {
				if len(c.gaps) != 0 || st.Dropped != 0 {
					t.Errorf("round %d: %s has %d gap records, %d dropped", round, s, len(c.gaps), st.Dropped)
				}
				have := map[int64]bool{}
				for _, r := range c.present {
					have[r.TS] = true
				}
				for ts := range appended[s] {
					if !have[ts] && !ackedTS[ts] {
						t.Errorf("round %d: %s record ts %d was appended (nil) but is missing", round, s, ts)
					}
				}
				if s == wire.StreamEvidence && len(c.present) > 0 {
					// Acked from the head: what is left is one contiguous,
					// chained run up to the last seq.
					first := c.last + 1 - uint64(len(c.present))
					chain := make([]wire.Record, 0, len(c.present))
					for seq := first; seq <= c.last; seq++ {
						r, ok := c.present[seq]
						if !ok {
							t.Fatalf("round %d: evidence seq %d missing inside the kept run %d..%d", round, seq, first, c.last)
						}
						chain = append(chain, *r)
					}
					if err := wire.VerifyChain(chain, chain[0].Prev); err != nil {
						t.Errorf("round %d: evidence chain: %v", round, err)
					}
				}
			}
			summary = append(summary, fmt.Sprintf("%s: last %d, %d stored, %d covered by %d gap records", s, c.last, len(c.present), covered, len(c.gaps)+len(extra)))
		}
		if total > overflowDBQuota {
			t.Errorf("round %d: %d bytes stored, database quota %d", round, total, overflowDBQuota)
		}
		if t.Failed() {
			t.FailNow()
		}
		t.Logf("round %d (killed after %v, %d lines): %s", round, run, len(out), strings.Join(summary, "; "))
		if err := d.db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d appends refused with ErrQuota in all", refusals)
}
