package badgerq_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/townlink/townlink/uplink/badgerq"
)

// Append reuses a pooled request's copy buffer and Peek copies values into
// shared chunks: neither may let one record's bytes leak into another's.
// Payloads of growing and shrinking sizes go in from a few goroutines (so
// requests come back to the pool and are reused), then every stored value
// must be exactly what was appended, and appending to one Peeked entry's
// Data must not change the next one.
func TestReusedBuffersKeepRecordsApart(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	q, err := db.Stream("s", badgerq.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	payload := func(w, i int) []byte {
		size := 1 + (i*37+w*11)%300 // sizes go up and down
		return bytes.Repeat([]byte{byte('a' + w)}, size)[:size:size]
	}
	const writers, each = 4, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				p := payload(w, i)
				if err := q.Append(ctx, p, []byte(fmt.Sprintf("w%d-%d", w, i))); err != nil {
					t.Error(err)
					return
				}
				clear(p) // the queue copied it
			}
		})
	}
	wg.Wait()
	next := map[int]int{} // per writer, the next i expected
	var after uint64
	for {
		es, err := q.Peek(ctx, after, 150)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) >= 2 {
			second := bytes.Clone(es[1].Data)
			_ = append(es[0].Data, "overrun"...)
			if !bytes.Equal(es[1].Data, second) {
				t.Fatalf("appending to entry %d's Data changed entry %d: %q", es[0].Seq, es[1].Seq, es[1].Data)
			}
		}
		for k := 0; k+1 < len(es); k += 2 {
			var w, i int
			if _, err := fmt.Sscanf(string(es[k+1].Data), "w%d-%d", &w, &i); err != nil {
				t.Fatalf("seq %d: %q is not a tag: %v", es[k+1].Seq, es[k+1].Data, err)
			}
			if i != next[w] {
				t.Fatalf("writer %d: record %d stored after %d", w, i, next[w]-1)
			}
			next[w]++
			if want := payload(w, i); !bytes.Equal(es[k].Data, want) {
				t.Fatalf("seq %d (writer %d, record %d): %d bytes %q…, want %d bytes of %q", es[k].Seq, w, i, len(es[k].Data), es[k].Data[:min(8, len(es[k].Data))], len(want), want[:1])
			}
		}
		if len(es)%2 != 0 {
			t.Fatalf("Peek returned %d entries, an odd count of pairs", len(es))
		}
		after = es[len(es)-1].Seq
		if after == writers*each*2 {
			break
		}
	}
	for w := range writers {
		if next[w] != each {
			t.Errorf("writer %d: %d records stored, want %d", w, next[w], each)
		}
	}
}
