package badgerq_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/townlink/townlink/uplink/badgerq"
)

const (
	tmpfsSize    = 64 << 20
	ballastSize  = 16 << 20
	diskFullFree = 24 << 20
)

// TestDiskFull runs a child on a 64 MB tmpfs: it appends until the free
// space guard refuses with ErrDiskFull, checks that every waiting caller
// gets it, that acks still work, and that appends resume with the next seq
// once space is freed, and that a reopen sees exactly what was committed.
// Without the guard Badger dies of SIGBUS on the full tmpfs (its WAL,
// value log and tables are written through mmaps): the child would crash.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: fills a tmpfs in a child process; make test runs it")
	}
	if os.Geteuid() != 0 {
		t.Fatal("TestDiskFull mounts a 64 MB tmpfs and needs root (CAP_SYS_ADMIN): run the tests as root, as CI does")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", tmpfsSize), "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount -t tmpfs on %s: %v: %s (needs root with CAP_SYS_ADMIN and util-linux mount)", mnt, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	out, err := childCmd(t, "diskfull:"+mnt).CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil {
		t.Fatalf("disk-full child failed (%v); last lines:\n%s", err, strings.Join(tail(lines, 40), "\n"))
	}
	var ok bool
	for _, l := range lines {
		if strings.HasPrefix(l, "OK ") {
			ok = true
			t.Log(l)
		}
	}
	if !ok {
		t.Fatalf("child did not report OK:\n%s", strings.Join(tail(lines, 20), "\n"))
	}
}

func diskFullChild(mnt string) error {
	ctx := context.Background()
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, make([]byte, ballastSize), 0o600); err != nil {
		return err
	}
	dir := filepath.Join(mnt, "db")
	open := func() (*badgerq.DB, *badgerq.Queue, error) {
		db, err := badgerq.Open(badgerq.Options{Dir: dir, MinFreeBytes: diskFullFree, DropFreeBytes: -1})
		if err != nil {
			return nil, nil, err
		}
		q, err := db.Stream("telemetry", badgerq.StreamOptions{})
		return db, q, err
	}
	db, q, err := open()
	if err != nil {
		return err
	}
	batch := make([][]byte, 100)
	for i := range batch {
		batch[i] = make([]byte, 200)
		for j := range batch[i] {
			batch[i][j] = byte('a' + (i+j)%26)
		}
	}
	var okBatches int
	for {
		err := q.Append(ctx, batch...)
		if err == nil {
			okBatches++
			continue
		}
		if !errors.Is(err, badgerq.ErrDiskFull) {
			return fmt.Errorf("after %d batches: %w, want ErrDiskFull", okBatches, err)
		}
		fmt.Println("first refusal:", err)
		break
	}
	if okBatches == 0 {
		return errors.New("no batch fitted before the disk was full")
	}
	committed := uint64(okBatches * len(batch))
	// Every waiting caller gets the error.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = q.Append(ctx, []byte("late")) })
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, badgerq.ErrDiskFull) {
			return fmt.Errorf("concurrent caller %d: %v, want ErrDiskFull", i, err)
		}
	}
	if s := q.Stats(); s.LastSeq != committed {
		return fmt.Errorf("LastSeq %d after refusals, want %d", s.LastSeq, committed)
	}
	// Acks still go through while full, so the forwarder can drain.
	acks := make([]uint64, 1000)
	for i := range acks {
		acks[i] = uint64(i + 1)
	}
	if err := q.Ack(acks...); err != nil {
		return fmt.Errorf("ack while full: %w", err)
	}
	// Free space: appends resume with the next seq.
	if err := os.Remove(ballast); err != nil {
		return err
	}
	if err := q.Append(ctx, []byte("after")); err != nil {
		return fmt.Errorf("append after freeing space: %w", err)
	}
	es, err := q.Peek(ctx, committed, 10)
	if err != nil || len(es) != 1 || es[0].Seq != committed+1 || string(es[0].Data) != "after" {
		return fmt.Errorf("after freeing space: Peek = %v, %v; want seq %d", es, err, committed+1)
	}
	if err := db.Close(); err != nil {
		return err
	}
	db, q, err = open()
	if err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	defer db.Close()
	s := q.Stats()
	if s.LastSeq != committed+1 || s.Backlog != int64(committed+1-1000) || s.FirstSeq != 1001 {
		return fmt.Errorf("after reopen: Stats %+v, want LastSeq %d, Backlog %d, FirstSeq 1001", s, committed+1, committed+1-1000)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err != nil {
		return err
	}
	fmt.Printf("OK %d entries committed before ErrDiskFull on a %d MB tmpfs with %d MB ballast; %d MB free at the end\n",
		committed, tmpfsSize>>20, ballastSize>>20, int64(st.Bavail)*int64(st.Bsize)>>20)
	return nil
}
