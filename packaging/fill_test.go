package packaging

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/townlink/townlink/uplink/badgerq"
)

// fillEnv makes TestFillHelper fill a store: "<dir>:<value bytes>:<limit MiB>".
const fillEnv = "TOWNLINK_FILL"

// TestFillHelper is not a test on its own: TestCrossArmv7StoreLimit runs
// the armv7 build of this package's tests under qemu-arm with fillEnv set,
// and this appends records of the given size to a LowMemory store (never
// acknowledged: a growing backlog) until an Append fails or the limit is
// reached, printing the stored bytes every 64 MiB and at the end. Without
// the env var it checks that it is idle.
func TestFillHelper(t *testing.T) {
	spec := os.Getenv(fillEnv)
	if spec == "" {
		return
	}
	parts := strings.Split(spec, ":")
	if len(parts) != 3 {
		t.Fatalf("%s=%q: want dir:valueBytes:limitMiB", fillEnv, spec)
	}
	size, err1 := strconv.Atoi(parts[1])
	limit, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("%s=%q: %v %v", fillEnv, spec, err1, err2)
	}
	fmt.Println(fill(parts[0], size, limit<<20))
}

// fill returns "FILLED <bytes> <error or ok>".
func fill(dir string, size int, limit int64) string {
	db, err := badgerq.Open(badgerq.Options{Dir: dir, MinFreeBytes: -1, DropFreeBytes: -1})
	if err != nil {
		return "FILLED 0 open: " + err.Error()
	}
	q, err := db.Stream("telemetry", badgerq.StreamOptions{})
	if err != nil {
		return "FILLED 0 stream: " + err.Error()
	}
	batch := make([][]byte, max(1, (256<<10)/size))
	for i := range batch {
		batch[i] = make([]byte, size)
		for j := range batch[i] {
			batch[i][j] = byte(i*31 + j*7) // not compressible to nothing
		}
	}
	var stored, next int64
	for stored < limit {
		if err := q.Append(context.Background(), batch...); err != nil {
			return fmt.Sprintf("FILLED %d append: %v", stored, err)
		}
		stored += int64(len(batch) * size)
		if stored >= next {
			fmt.Printf("PROGRESS %d MiB on disk %d MiB\n", stored>>20, du(dir)>>20)
			next += 64 << 20
		}
	}
	if err := db.Close(); err != nil {
		return fmt.Sprintf("FILLED %d close: %v", stored, err)
	}
	// Reopen: the whole store is mapped again at open.
	db, err = badgerq.Open(badgerq.Options{Dir: dir, MinFreeBytes: -1, DropFreeBytes: -1})
	if err != nil {
		return fmt.Sprintf("FILLED %d reopen: %v", stored, err)
	}
	db.Close()
	return fmt.Sprintf("FILLED %d ok", stored)
}

func du(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
