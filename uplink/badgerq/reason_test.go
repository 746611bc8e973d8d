package badgerq

import (
	"context"
	"fmt"
	"testing"
)

func TestReason(t *testing.T) {
	for err, want := range map[error]string{
		nil:                                 "",
		fmt.Errorf("x: %w", ErrDiskFull):    "disk_full",
		fmt.Errorf("x: %w", ErrQuota):       "quota",
		ErrTooLarge:                         "too_large",
		fmt.Errorf("q: %w", errClosed):      "closed",
		context.Canceled:                    "cancelled",
		fmt.Errorf("commit: %w", ErrCommit): "store_error",
	} {
		if got := Reason(err); got != want {
			t.Errorf("Reason(%v) = %q, want %q", err, got, want)
		}
	}
}
