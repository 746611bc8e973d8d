package badgerq_test

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/townlink/townlink/uplink/badgerq"
)

// TestBackupRestoreMove: a backup taken while the queue is open restores
// the backlog and positions; a move skips seqs (never sent) and stores
// one entry at the new last seq; a move backwards is refused.
func TestBackupRestoreMove(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	db := openDB(t, src)
	q, err := db.Stream("telemetry", badgerq.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 10; i++ {
		if err := q.Append(ctxT(t), []byte(fmt.Sprintf("r%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Ack(1, 2, 3); err != nil {
		t.Fatal(err)
	}
	var backup bytes.Buffer
	if err := db.Backup(&backup); err != nil {
		t.Fatal(err)
	}
	// Written after the backup: not in it.
	if err := q.Append(ctxT(t), []byte("r11")); err != nil {
		t.Fatal(err)
	}
	db.Close()

	dst := filepath.Join(t.TempDir(), "dst")
	if err := badgerq.Restore(badgerq.Options{Dir: dst}, bytes.NewReader(backup.Bytes())); err != nil {
		t.Fatal(err)
	}
	if err := badgerq.Restore(badgerq.Options{Dir: dst}, bytes.NewReader(backup.Bytes())); !errors.Is(err, badgerq.ErrArgument) {
		t.Fatalf("restore into a non-empty directory: %v, want ErrArgument", err)
	}
	before, err := badgerq.MoveStreams(badgerq.Options{Dir: dst}, map[string]badgerq.Move{
		"telemetry": {Last: 1000, Entry: []byte("gap 11-999")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if before["telemetry"].Last != 10 {
		t.Fatalf("position before the move: %+v, want last 10 (the backup's)", before["telemetry"])
	}
	if _, err := badgerq.MoveStreams(badgerq.Options{Dir: dst}, map[string]badgerq.Move{"telemetry": {Last: 999}}); !errors.Is(err, badgerq.ErrArgument) {
		t.Fatalf("move backwards: %v, want ErrArgument", err)
	}

	db = openDB(t, dst)
	defer db.Close()
	q, err = db.Stream("telemetry", badgerq.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ents, err := q.Peek(ctxT(t), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, fmt.Sprintf("%d:%s", e.Seq, e.Data))
	}
	want := "[4:r4 5:r5 6:r6 7:r7 8:r8 9:r9 10:r10 1000:gap 11-999]"
	if fmt.Sprint(got) != want {
		t.Fatalf("restored backlog %v, want %s", got, want)
	}
	if err := q.Append(ctxT(t), []byte("next")); err != nil {
		t.Fatal(err)
	}
	if s := q.Stats(); s.LastSeq != 1001 || s.Backlog != 9 {
		t.Fatalf("after the next append: %+v, want last 1001, backlog 9", s)
	}
	h, err := db.Heads()
	if err != nil || h["telemetry"].Last != 1001 {
		t.Fatalf("Heads = %v, %v", h, err)
	}
}
