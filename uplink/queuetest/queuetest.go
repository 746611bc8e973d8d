// Package queuetest is the conformance suite every uplink.Queue
// implementation runs: ordering, contiguous seqs from 1, Peek after/n
// semantics and blocking, Ack in any order, seqs surviving a reopen, and
// concurrent appenders.
package queuetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/townlink/townlink/uplink"
)

// Opener opens the queue stored in dir (the same dir again after close,
// for the reopen cases) and returns it with a function that closes it.
type Opener func(t *testing.T, dir string) (q uplink.Queue, close func())

// wait bounds every blocking call so a broken queue fails instead of hanging.
const wait = 20 * time.Second

// Run runs the suite. Each case gets its own t.TempDir().
func Run(t *testing.T, open func(t *testing.T, dir string) (q uplink.Queue, close func())) {
	cases := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"OrderAndSeqFromOne", testOrder},
		{"EmptyAppend", testEmptyAppend},
		{"PeekAfterAndN", testPeekAfterN},
		{"PeekDoesNotRemove", testPeekDoesNotRemove},
		{"PeekBlocksThenWakes", testPeekWakes},
		{"PeekHonoursContext", testPeekContext},
		{"AppendHonoursContext", testAppendContext},
		{"AckAnyOrder", testAckAnyOrder},
		{"SeqSurvivesReopen", testReopen},
		{"SeqSurvivesReopenAfterAckAll", testReopenAckedAll},
		{"AcksSurviveCleanClose", testAcksSurviveClose},
		{"ConcurrentAppenders", testConcurrentAppenders},
		{"ConcurrentMultiAppendsAreConsecutive", testConcurrentBatches},
		{"ConcurrentPeeksWithWindow", testConcurrentPeeks},
		{"DrainWhileAppending", testDrainWhileAppending},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open) })
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func openT(t *testing.T, open Opener, dir string) (uplink.Queue, func()) {
	t.Helper()
	q, closeFn := open(t, dir)
	if q == nil {
		t.Fatal("open returned a nil queue")
	}
	var once sync.Once
	c := func() { once.Do(closeFn) }
	t.Cleanup(c)
	return q, c
}

func payload(i int) []byte { return fmt.Appendf(nil, "payload-%06d", i) }

func mustAppend(t *testing.T, q uplink.Queue, data ...[]byte) {
	t.Helper()
	if err := q.Append(ctxT(t), data...); err != nil {
		t.Fatalf("Append(%d payloads): %v", len(data), err)
	}
}

func mustPeek(t *testing.T, q uplink.Queue, after uint64, n int) []uplink.Entry {
	t.Helper()
	es, err := q.Peek(ctxT(t), after, n)
	if err != nil {
		t.Fatalf("Peek(after=%d, n=%d): %v", after, n, err)
	}
	return es
}

// peekEmpty asserts that nothing is available after `after`: Peek must
// block until its (short) context ends.
func peekEmpty(t *testing.T, q uplink.Queue, after uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	es, err := q.Peek(ctx, after, 100)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Peek(after=%d) on an empty range = %v, %v; want context.DeadlineExceeded", after, seqsOf(es), err)
	}
}

func seqsOf(es []uplink.Entry) []uint64 {
	s := make([]uint64, len(es))
	for i, e := range es {
		s[i] = e.Seq
	}
	return s
}

func seqRange(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// drainAll peeks everything after `after` (the queue must hold at least
// `want` entries) and returns exactly want entries.
func drainAll(t *testing.T, q uplink.Queue, after uint64, want int) []uplink.Entry {
	t.Helper()
	var all []uplink.Entry
	for len(all) < want {
		es := mustPeek(t, q, after, 500)
		all = append(all, es...)
		after = es[len(es)-1].Seq
	}
	if len(all) != want {
		t.Fatalf("drained %d entries, want %d", len(all), want)
	}
	return all
}

func testOrder(t *testing.T, open Opener) {
	q, _ := openT(t, open, t.TempDir())
	mustAppend(t, q, payload(0))
	mustAppend(t, q, payload(1), payload(2), payload(3))
	mustAppend(t, q, payload(4))
	es := mustPeek(t, q, 0, 100)
	if got, want := seqsOf(es), seqRange(1, 5); !slices.Equal(got, want) {
		t.Fatalf("seqs = %v, want %v", got, want)
	}
	for i, e := range es {
		if string(e.Data) != string(payload(i)) {
			t.Errorf("seq %d data = %q, want %q", e.Seq, e.Data, payload(i))
		}
	}
}

func testEmptyAppend(t *testing.T, open Opener) {
	q, _ := openT(t, open, t.TempDir())
	if err := q.Append(ctxT(t)); err != nil {
		t.Fatalf("Append() with no payloads: %v", err)
	}
	mustAppend(t, q, []byte("x"))
	if es := mustPeek(t, q, 0, 10); !slices.Equal(seqsOf(es), []uint64{1}) {
		t.Fatalf("after an empty Append, first seq = %v, want [1] (no seq consumed)", seqsOf(es))
	}
}

func testPeekAfterN(t *testing.T, open Opener) {
	q, _ := openT(t, open, t.TempDir())
	for i := range 10 {
		mustAppend(t, q, payload(i))
	}
	for _, c := range []struct {
		after uint64
		n     int
		want  []uint64
	}{
		{0, 100, seqRange(1, 10)},
		{0, 1, []uint64{1}},
		{3, 4, seqRange(4, 7)},
		{9, 5, []uint64{10}},
		{7, 3, seqRange(8, 10)},
	} {
		es := mustPeek(t, q, c.after, c.n)
		if got := seqsOf(es); !slices.Equal(got, c.want) {
			t.Errorf("Peek(after=%d, n=%d) = %v, want %v", c.after, c.n, got, c.want)
		}
		for _, e := range es {
			if string(e.Data) != string(payload(int(e.Seq-1))) {
				t.Errorf("Peek(after=%d): seq %d data %q, want %q", c.after, e.Seq, e.Data, payload(int(e.Seq-1)))
			}
		}
	}
	peekEmpty(t, q, 10)
	peekEmpty(t, q, 1000)
}

func testPeekDoesNotRemove(t *testing.T, open Opener) {
	q, _ := openT(t, open, t.TempDir())
	mustAppend(t, q, payload(0), payload(1))
	for range 3 {
		if got := seqsOf(mustPeek(t, q, 0, 10)); !slices.Equal(got, []uint64{1, 2}) {
			t.Fatalf("repeated Peek(0) = %v, want [1 2]", got)
		}
	}
}

func testPeekWakes(t *testing.T, open Opener) {
	q, _ := openT(t, open, t.TempDir())
	mustAppend(t, q, payload(0))
	type res struct {
		es  []uplink.Entry
		err error
	}
	ch := make(chan res, 1)
	go func() {
		es, err := q.Peek(ctxT(t), 1, 10)
		ch <- res{es, err}
	}()
	select {
	case r := <-ch:
		t.Fatalf("Peek(after=1) with nothing after 1 returned %v, %v; want it to block", seqsOf(r.es), r.err)
	case <-time.After(100 * time.Millisecond):
	}
	mustAppend(t, q, payload(1))
	select {
	case r := <-ch:
		if r.err != nil || !slices.Equal(seqsOf(r.es), []uint64{2}) {
			t.Fatalf("woken Peek = %v, %v; want [2], nil", seqsOf(r.es), r.err)
		}
		if string(r.es[0].Data) != string(payload(1)) {
			t.Fatalf("woken Peek data %q, want %q", r.es[0].Data, payload(1))
		}
	case <-time.After(wait):
		t.Fatal("Peek did not wake after Append")
	}
}

func testPeekContext(t *testing.T, open Opener) {
	q, _ := openT(t, open, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := q.Peek(ctx, 0, 10)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Peek after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(wait):
		t.Fatal("Peek did not return after its context was cancelled")
	}
	peekEmpty(t, q, 0) // deadline variant
	// An already-ended context is honoured even when entries are there.
	mustAppend(t, q, payload(0))
	if _, err := q.Peek(ctx, 0, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("Peek with a cancelled context = %v, want context.Canceled", err)
	}
}

func testAppendContext(t *testing.T, open Opener) {
	q, _ := openT(t, open, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := q.Append(ctx, payload(0)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context = %v, want context.Canceled", err)
	}
	mustAppend(t, q, payload(1))
	es := mustPeek(t, q, 0, 10)
	if len(es) != 1 || es[0].Seq != 1 || string(es[0].Data) != string(payload(1)) {
		t.Fatalf("after a refused Append, Peek = %v; want only seq 1 = %q", seqsOf(es), payload(1))
	}
}

func testAckAnyOrder(t *testing.T, open Opener) {
	q, _ := openT(t, open, t.TempDir())
	for i := range 10 {
		mustAppend(t, q, payload(i))
	}
	ack := func(seqs ...uint64) {
		t.Helper()
		if err := q.Ack(seqs...); err != nil {
			t.Fatalf("Ack(%v): %v", seqs, err)
		}
	}
	ack(5, 2, 9)
	if got, want := seqsOf(mustPeek(t, q, 0, 100)), []uint64{1, 3, 4, 6, 7, 8, 10}; !slices.Equal(got, want) {
		t.Fatalf("after Ack(5,2,9): %v, want %v", got, want)
	}
	if got, want := seqsOf(mustPeek(t, q, 4, 2)), []uint64{6, 7}; !slices.Equal(got, want) {
		t.Fatalf("Peek(after=4, n=2) skipping acked 5: %v, want %v", got, want)
	}
	ack(4, 1, 3)
	if got, want := seqsOf(mustPeek(t, q, 0, 100)), []uint64{6, 7, 8, 10}; !slices.Equal(got, want) {
		t.Fatalf("after Ack(4,1,3): %v, want %v", got, want)
	}
	ack(5, 2, 999, 0, 11) // already acked, unknown and never assigned: no-ops
	ack()
	if got, want := seqsOf(mustPeek(t, q, 0, 100)), []uint64{6, 7, 8, 10}; !slices.Equal(got, want) {
		t.Fatalf("after no-op acks: %v, want %v", got, want)
	}
	ack(10, 8, 7, 6)
	peekEmpty(t, q, 0)
	mustAppend(t, q, payload(10))
	if got := seqsOf(mustPeek(t, q, 0, 100)); !slices.Equal(got, []uint64{11}) {
		t.Fatalf("after acking everything, the next Append got %v, want [11]", got)
	}
}

func testReopen(t *testing.T, open Opener) {
	dir := t.TempDir()
	q, closeQ := openT(t, open, dir)
	for i := range 5 {
		mustAppend(t, q, payload(i))
	}
	closeQ()
	q, _ = openT(t, open, dir)
	if got := seqsOf(mustPeek(t, q, 0, 100)); !slices.Equal(got, seqRange(1, 5)) {
		t.Fatalf("after reopen: %v, want %v", got, seqRange(1, 5))
	}
	mustAppend(t, q, payload(5))
	es := mustPeek(t, q, 0, 100)
	if got := seqsOf(es); !slices.Equal(got, seqRange(1, 6)) {
		t.Fatalf("after reopen and Append: %v, want %v", got, seqRange(1, 6))
	}
	for i, e := range es {
		if string(e.Data) != string(payload(i)) {
			t.Errorf("seq %d data %q, want %q", e.Seq, e.Data, payload(i))
		}
	}
}

func testReopenAckedAll(t *testing.T, open Opener) {
	dir := t.TempDir()
	q, closeQ := openT(t, open, dir)
	for i := range 5 {
		mustAppend(t, q, payload(i))
	}
	if err := q.Ack(seqRange(1, 5)...); err != nil {
		t.Fatal(err)
	}
	closeQ()
	q, closeQ = openT(t, open, dir)
	peekEmpty(t, q, 0)
	mustAppend(t, q, payload(5))
	if got := seqsOf(mustPeek(t, q, 0, 100)); !slices.Equal(got, []uint64{6}) {
		t.Fatalf("after acking 1..5 and reopening, Append got %v, want [6]", got)
	}
	// Twice: the counter must not depend on entries being present.
	if err := q.Ack(6); err != nil {
		t.Fatal(err)
	}
	closeQ()
	q, _ = openT(t, open, dir)
	mustAppend(t, q, payload(6))
	if got := seqsOf(mustPeek(t, q, 0, 100)); !slices.Equal(got, []uint64{7}) {
		t.Fatalf("second reopen: Append got %v, want [7]", got)
	}
}

func testAcksSurviveClose(t *testing.T, open Opener) {
	dir := t.TempDir()
	q, closeQ := openT(t, open, dir)
	for i := range 10 {
		mustAppend(t, q, payload(i))
	}
	if err := q.Ack(1, 2, 3, 7); err != nil {
		t.Fatal(err)
	}
	closeQ()
	q, _ = openT(t, open, dir)
	if got, want := seqsOf(mustPeek(t, q, 0, 100)), []uint64{4, 5, 6, 8, 9, 10}; !slices.Equal(got, want) {
		t.Fatalf("after acks and a clean close: %v, want %v", got, want)
	}
	if err := q.Ack(4); err != nil {
		t.Fatal(err)
	}
	if got, want := seqsOf(mustPeek(t, q, 0, 100)), []uint64{5, 6, 8, 9, 10}; !slices.Equal(got, want) {
		t.Fatalf("after reopen and Ack(4): %v, want %v", got, want)
	}
}

func testConcurrentAppenders(t *testing.T, open Opener) {
	q, _ := openT(t, open, t.TempDir())
	const workers = 8
	per := 1000
	if testing.Short() {
		per = 200
	}
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				if err := q.Append(ctxT(t), fmt.Appendf(nil, "w%d-%06d", w, i)); err != nil {
					errc <- fmt.Errorf("worker %d item %d: %w", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	all := drainAll(t, q, 0, workers*per)
	seen := make(map[string]uint64, len(all))
	lastOf := make(map[int]int)
	for i, e := range all {
		if e.Seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d, want %d (hole or duplicate)", i, e.Seq, i+1)
		}
		if prev, dup := seen[string(e.Data)]; dup {
			t.Fatalf("payload %q stored twice (seq %d and %d)", e.Data, prev, e.Seq)
		}
		seen[string(e.Data)] = e.Seq
		var w, n int
		if _, err := fmt.Sscanf(string(e.Data), "w%d-%d", &w, &n); err != nil {
			t.Fatalf("seq %d: unexpected payload %q", e.Seq, e.Data)
		}
		if prev, ok := lastOf[w]; ok && n != prev+1 {
			t.Fatalf("worker %d: item %d stored after item %d (per-caller order lost)", w, n, prev)
		}
		lastOf[w] = n
	}
	for w := range workers {
		if lastOf[w] != per-1 {
			t.Errorf("worker %d: last stored item %d, want %d", w, lastOf[w], per-1)
		}
	}
	peekEmpty(t, q, uint64(workers*per))
}

func testConcurrentBatches(t *testing.T, open Opener) {
	q, _ := openT(t, open, t.TempDir())
	const workers, calls, batch = 6, 50, 7
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for c := range calls {
				data := make([][]byte, batch)
				for i := range data {
					data[i] = fmt.Appendf(nil, "w%d-c%03d-i%d", w, c, i)
				}
				if err := q.Append(ctxT(t), data...); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	all := drainAll(t, q, 0, workers*calls*batch)
	for i := 0; i < len(all); i += batch {
		var w, c, k int
		if _, err := fmt.Sscanf(string(all[i].Data), "w%d-c%d-i%d", &w, &c, &k); err != nil || k != 0 {
			t.Fatalf("seq %d: %q does not start a batch", all[i].Seq, all[i].Data)
		}
		for j := range batch {
			e := all[i+j]
			if want := fmt.Sprintf("w%d-c%03d-i%d", w, c, j); string(e.Data) != want || e.Seq != uint64(i+j+1) {
				t.Fatalf("seq %d = %q, want seq %d = %q: one Append's payloads must get consecutive seqs",
					e.Seq, e.Data, i+j+1, want)
			}
		}
	}
}

func testConcurrentPeeks(t *testing.T, open Opener) {
	q, _ := openT(t, open, t.TempDir())
	const total = 400
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	// Readers with different windows wait for entries that are not there yet.
	for r := range 4 {
		wg.Go(func() {
			after := uint64(r * 50)
			for after < total {
				es, err := q.Peek(ctxT(t), after, 1+r*7)
				if err != nil {
					errc <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
				for _, e := range es {
					if e.Seq != after+1 || string(e.Data) != string(payload(int(e.Seq-1))) {
						errc <- fmt.Errorf("reader %d: got seq %d %q after %d", r, e.Seq, e.Data, after)
						return
					}
					after = e.Seq
				}
			}
		})
	}
	for i := range total {
		mustAppend(t, q, payload(i))
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

// testDrainWhileAppending is the forwarder's pattern: a window of peeks
// ahead of the acks, acks in completion order, while producers append.
func testDrainWhileAppending(t *testing.T, open Opener) {
	q, _ := openT(t, open, t.TempDir())
	const total = 3000
	done := make(chan error, 1)
	go func() {
		for i := 0; i < total; i += 10 {
			data := make([][]byte, 10)
			for j := range data {
				data[j] = payload(i + j)
			}
			if err := q.Append(ctxT(t), data...); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var after uint64
	got := 0
	for got < total {
		es := mustPeek(t, q, after, 64)
		seqs := seqsOf(es)
		for i, e := range es {
			if e.Seq != after+uint64(i)+1 || string(e.Data) != string(payload(int(e.Seq-1))) {
				t.Fatalf("drain: seq %d %q after %d", e.Seq, e.Data, after)
			}
		}
		after = seqs[len(seqs)-1]
		got += len(es)
		slices.Reverse(seqs) // acks arrive out of order
		if err := q.Ack(seqs...); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	peekEmpty(t, q, 0)
}
