package badgerq

import (
	"context"
	"errors"
)

// Reason names why an Append failed, for drop counters and the status's
// `dropped` map: "disk_full", "quota", "too_large", "closed", "cancelled"
// or "store_error". It is the one place these names are made.
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrDiskFull):
		return "disk_full"
	case errors.Is(err, ErrQuota):
		return "quota"
	case errors.Is(err, ErrTooLarge):
		return "too_large"
	case errors.Is(err, errClosed):
		return "closed"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "cancelled"
	}
	return "store_error"
}
