// Package clock tells whether the gateway's clock is synchronised (NTP,
// chrony or a GNSS source), which decides a record's `tsrc`.
package clock

import "golang.org/x/sys/unix"

// Synced reports whether the kernel considers the system clock
// synchronised (adjtimex STA_UNSYNC clear and not TIME_ERROR).
func Synced() bool {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false
	}
	return state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
}
