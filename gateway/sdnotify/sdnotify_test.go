package sdnotify

import (
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// listen opens a unixgram socket as systemd would and returns its path
// and a function that reads the next datagram.
func listen(t *testing.T) (string, func() string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return path, func() string {
		buf := make([]byte, 256)
		if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no datagram: %v", err)
		}
		return string(buf[:n])
	}
}

func TestNotifySendsEachState(t *testing.T) {
	path, next := listen(t)
	n, err := FromEnv(env(map[string]string{"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000"}), 42)
	if err != nil {
		t.Fatal(err)
	}
	if !n.Enabled() || n.WatchdogPeriod() != 30*time.Second {
		t.Fatalf("enabled %v, period %v; want true, 30s", n.Enabled(), n.WatchdogPeriod())
	}
	for _, s := range []string{Ready, Watchdog, Stopping} {
		if err := n.Notify(s); err != nil {
			t.Fatal(err)
		}
		if got := next(); got != s {
			t.Fatalf("socket got %q, want %q", got, s)
		}
	}
}

func TestAbstractSocket(t *testing.T) {
	name := "townlink-sdnotify-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "\x00" + name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n, err := FromEnv(env(map[string]string{"NOTIFY_SOCKET": "@" + name}), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(Ready); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	k, err := c.Read(buf)
	if err != nil || string(buf[:k]) != Ready {
		t.Fatalf("got %q, %v", buf[:k], err)
	}
}

func TestDisabledOutsideSystemd(t *testing.T) {
	n, err := FromEnv(env(nil), 1)
	if err != nil {
		t.Fatal(err)
	}
	if n.Enabled() || n.WatchdogPeriod() != 0 || n.Notify(Ready) != nil {
		t.Fatal("a notifier without NOTIFY_SOCKET must be a silent no-op")
	}
	var nilN *Notifier
	if nilN.Notify(Ready) != nil || nilN.Enabled() {
		t.Fatal("a nil notifier must be a no-op")
	}
}

func TestWatchdogForAnotherPID(t *testing.T) {
	n, err := FromEnv(env(map[string]string{"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "7"}), 8)
	if err != nil {
		t.Fatal(err)
	}
	if n.WatchdogPeriod() != 0 {
		t.Fatalf("watchdog for pid 7 taken by pid 8: %v", n.WatchdogPeriod())
	}
}

func TestBadEnvironment(t *testing.T) {
	for _, m := range []map[string]string{
		{"NOTIFY_SOCKET": "relative/path"},
		{"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "soon"},
		{"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "0"},
	} {
		if _, err := FromEnv(env(m), 1); !errors.Is(err, ErrNotify) {
			t.Errorf("%v: err %v, want ErrNotify", m, err)
		}
	}
}

func TestNotifyToMissingSocketFails(t *testing.T) {
	n, err := FromEnv(env(map[string]string{"NOTIFY_SOCKET": filepath.Join(t.TempDir(), "gone")}), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(Ready); !errors.Is(err, ErrNotify) {
		t.Fatalf("err %v, want ErrNotify", err)
	}
}

// FuzzFromEnv: any environment either yields a notifier or ErrNotify.
func FuzzFromEnv(f *testing.F) {
	f.Add("/run/systemd/notify", "30000000", "")
	f.Add("@abstract", "x", "1")
	f.Add("rel", "", "")
	f.Fuzz(func(t *testing.T, sock, usec, pid string) {
		n, err := FromEnv(env(map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": usec, "WATCHDOG_PID": pid}), 1)
		if err != nil {
			if !errors.Is(err, ErrNotify) {
				t.Fatalf("error %v does not wrap ErrNotify", err)
			}
			return
		}
		if n.WatchdogPeriod() < 0 {
			t.Fatalf("negative watchdog period %v", n.WatchdogPeriod())
		}
	})
}
