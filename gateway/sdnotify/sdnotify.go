// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)) by hand: one datagram per state change ("READY=1",
// "WATCHDOG=1", "STOPPING=1") to the unix datagram socket named by
// $NOTIFY_SOCKET. Outside systemd (no $NOTIFY_SOCKET) every call is a
// no-op, so the gateway calls it unconditionally.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// States the gateway sends.
const (
	Ready    = "READY=1"
	Watchdog = "WATCHDOG=1"
	Stopping = "STOPPING=1"
)

// ErrNotify reports a notification that could not be sent, or a
// malformed systemd environment.
var ErrNotify = errors.New("sdnotify: notify failed")

// Notifier sends notifications to one socket. The zero value and nil are
// disabled notifiers: Notify does nothing.
type Notifier struct {
	addr     *net.UnixAddr
	watchdog time.Duration // 0: no watchdog asked for
}

// FromEnv returns the notifier systemd set up for this process: the
// socket from NOTIFY_SOCKET (an "@" prefix is an abstract socket) and the
// watchdog period from WATCHDOG_USEC, honoured only when WATCHDOG_PID is
// unset or equals pid. getenv is os.Getenv outside tests.
func FromEnv(getenv func(string) string, pid int) (*Notifier, error) {
	n := &Notifier{}
	if s := getenv("NOTIFY_SOCKET"); s != "" {
		name := s
		if s[0] == '@' {
			name = "\x00" + s[1:]
		} else if s[0] != '/' {
			return nil, fmt.Errorf("%w: NOTIFY_SOCKET %q is neither a path nor an abstract name", ErrNotify, s)
		}
		n.addr = &net.UnixAddr{Name: name, Net: "unixgram"}
	}
	if us := getenv("WATCHDOG_USEC"); us != "" {
		if p := getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(pid) {
			return n, nil // meant for another process
		}
		v, err := strconv.ParseUint(us, 10, 63)
		if err != nil || v == 0 {
			return nil, fmt.Errorf("%w: WATCHDOG_USEC %q is not a positive number of microseconds", ErrNotify, us)
		}
		n.watchdog = time.Duration(v) * time.Microsecond
	}
	return n, nil
}

// Enabled reports whether notifications go anywhere.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != nil }

// WatchdogPeriod is the period systemd expects WATCHDOG=1 within (0: no
// watchdog). Feed at half of it, as sd_watchdog_enabled(3) advises.
func (n *Notifier) WatchdogPeriod() time.Duration {
	if !n.Enabled() {
		return 0
	}
	return n.watchdog
}

// Notify sends one state string ("READY=1", or several lines joined by
// "\n"). It does nothing on a disabled notifier.
func (n *Notifier) Notify(state string) error {
	if !n.Enabled() {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotify, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNotify, state, err)
	}
	return nil
}
