package badgerq_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/townlink/townlink/uplink"
	"github.com/townlink/townlink/uplink/badgerq"
)

func TestKV(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	kv, err := db.KV("seen")
	if err != nil {
		t.Fatal(err)
	}
	other, err := db.KV("seen2")
	if err != nil {
		t.Fatal(err)
	}
	// A stream of the same name shares nothing with the table.
	q, err := db.Stream("seen", badgerq.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Append(ctxT(t), []byte("rec")); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := kv.Put(fmt.Sprintf("k%d", i), []byte(fmt.Sprintf("v%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Put("k1", []byte("other")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Put("k1", []byte("v1b")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete("k3", "absent"); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := kv.Get("k1"); err != nil || !ok || string(v) != "v1b" {
		t.Fatalf("Get k1 = %q %v %v", v, ok, err)
	}
	if v, ok, err := kv.Get("k3"); err != nil || ok {
		t.Fatalf("Get deleted k3 = %q %v %v", v, ok, err)
	}
	if _, _, err := kv.Get(""); !errors.Is(err, badgerq.ErrKVKey) {
		t.Fatalf("Get empty key err = %v", err)
	}
	if err := kv.Put(strings.Repeat("x", badgerq.MaxKVKey+1), nil); !errors.Is(err, badgerq.ErrKVKey) {
		t.Fatalf("Put long key err = %v", err)
	}
	if _, err := db.KV("a/b"); !errors.Is(err, badgerq.ErrStreamName) {
		t.Fatalf("KV(a/b) err = %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := kv.Put("k9", nil); !errors.Is(err, uplink.ErrClosed) {
		t.Fatalf("Put after Close err = %v", err)
	}

	// Reopened: the table is as it was and the stream still holds its one record.
	db = openDB(t, dir)
	defer db.Close()
	kv, _ = db.KV("seen")
	got := map[string]string{}
	err = kv.Scan(func(k string, v []byte) error { got[k] = string(v); return nil })
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"k0": "v0", "k1": "v1b", "k2": "v2", "k4": "v4"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after reopen: %v, want %v", got, want)
	}
	q, err = db.Stream("seen", badgerq.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	es, err := q.Peek(ctxT(t), 0, 10)
	if err != nil || len(es) != 1 || string(es[0].Data) != "rec" {
		t.Fatalf("stream after reopen: %v %v", es, err)
	}
	stop := errors.New("stop")
	n := 0
	if err := kv.Scan(func(string, []byte) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("Scan stop: n=%d err=%v", n, err)
	}
}
