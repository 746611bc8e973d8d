package fieldbroker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/townlink/townlink/gateway/fieldbroker"
)

// fastBackoff keeps tests that refuse on purpose quick.
var fastBackoff = fieldbroker.Backoff{First: 5 * time.Millisecond, Max: 20 * time.Millisecond}

// dialFrom opens a TCP connection from a given loopback source address
// (Linux routes all of 127/8 to lo), so tests can play several hosts.
func dialFrom(t testing.TB, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: wait}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	return c
}

// closedByPeer waits for c to be closed by the broker: true on EOF or a
// reset, false if it is still open after wait.
func closedByPeer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	_, err := io.ReadAll(c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// rss is the process's resident set in bytes (Linux).
func rss(t *testing.T) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// 1,000 sockets announcing the largest CONNECT mochi would read and 1,000
// announcing one at the pre-login limit, that never finish it: the heap stays small (mochi
// would have allocated each announced size before checking the password)
// and a real device connects and publishes during the flood.
func TestConnectFloodMemory(t *testing.T) {
	const n = 1000
	rec := newRecorder()
	b := startBroker(t, fieldbroker.Options{Handle: rec.handle, MaxPending: 2 * n, MaxPendingPerAddr: 2 * n})
	heap0, rss0 := heapInUse(), rss(t)
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	// The largest packet mochi itself would read and allocate (its
	// MaximumPacketSize is MaxPayload plus topic room), then silence.
	huge := append([]byte{0x10}, varint(fieldbroker.DefaultMaxPayload+64<<10)...)
	// At the CONNECT limit, then silence.
	limit := append([]byte{0x10}, varint(fieldbroker.DefaultMaxConnectSize)...)
	for i := range 2 * n {
		c := dialFrom(t, "127.0.0.2", b.Addr())
		conns = append(conns, c)
		hdr := limit
		if i%2 == 0 {
			hdr = huge
		}
		if _, err := c.Write(append(hdr, 0x00, 0x04, 'M', 'Q')); err != nil {
			t.Fatalf("socket %d: %v", i, err)
		}
	}
	// Every oversized announcement is dropped unread.
	waitStats(t, b, "the huge CONNECTs dropped", func(s fieldbroker.Stats) bool { return s.PreAuthDropped >= n })
	// A real device during the flood.
	c := connect(t, clientOpts(b.Addr(), "u-cam-01", "pw-cam-01", "cam-01", true))
	publish(t, c, "field/cam-01/alarm.sos", `{"active":true}`)
	heap1, rss1 := heapInUse(), rss(t)
	dh, dr := int64(heap1)-int64(heap0), int64(rss1)-int64(rss0)
	t.Logf("%d sockets (%d announcing %d bytes, %d stalled at %d bytes): heap +%.1f MiB, RSS +%.1f MiB; stats %+v",
		2*n, n, fieldbroker.DefaultMaxPayload+64<<10, n, fieldbroker.DefaultMaxConnectSize, float64(dh)/(1<<20), float64(dr)/(1<<20), b.Stats().Counters)
	rssBound := int64(100 << 20)
	if raceEnabled {
		rssBound *= 4 // shadow memory
	}
	if dh > 100<<20 || dr > rssBound {
		t.Fatalf("the flood cost heap +%d, RSS +%d bytes; want < 100 MiB heap, < %d MiB RSS", dh, dr, rssBound>>20)
	}
	if s := b.Stats(); s.PreAuthDropped != n || s.Accepted != 1 {
		t.Fatalf("stats %+v, want exactly the %d huge CONNECTs dropped", s.Counters, n)
	}
	// The stalled ones hold nothing mochi-side: Close does not wait for them.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// Connections that have not logged in are capped per source address and
// in total; a device from another address still gets in.
func TestPendingCaps(t *testing.T) {
	b := startBroker(t, fieldbroker.Options{Handle: newRecorder().handle, MaxPending: 6, MaxPendingPerAddr: 4})
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			_ = c.Close()
		}
	})
	// 6 silent sockets from one address: 4 are held, 2 closed at once.
	var extra []net.Conn
	for i := range 6 {
		c := dialFrom(t, "127.0.0.2", b.Addr())
		if i < 4 {
			held = append(held, c)
		} else {
			extra = append(extra, c)
		}
	}
	for i, c := range extra {
		if !closedByPeer(c) {
			t.Fatalf("socket %d over the per-address cap still open", i+4)
		}
		_ = c.Close()
	}
	// A device from another address gets in.
	connect(t, clientOpts(b.Addr(), "u-cam-01", "pw-cam-01", "cam-01", true))
	// 2 more from a third address fill the total; then nobody gets in.
	for range 2 {
		held = append(held, dialFrom(t, "127.0.0.3", b.Addr()))
	}
	waitStats(t, b, "the pending slots taken", func(s fieldbroker.Stats) bool { return s.PreAuthDropped == 2 })
	late := dialFrom(t, "127.0.0.4", b.Addr())
	if !closedByPeer(late) {
		t.Fatal("a connection over the total cap was kept")
	}
	_ = late.Close()
	if s := b.Stats(); s.PreAuthDropped != 3 {
		t.Fatalf("pre-auth drops %d, want 3", s.PreAuthDropped)
	}
	// Freeing one slot lets a device in again.
	_ = held[0].Close()
	connectEventually(t, clientOpts(b.Addr(), "u-cam-02", "pw-cam-02", "cam-02", true))
}

// MaxClients bounds logged-in connections.
func TestMaxClients(t *testing.T) {
	b := startBroker(t, fieldbroker.Options{Handle: newRecorder().handle, MaxClients: 1})
	connect(t, clientOpts(b.Addr(), "u-cam-01", "pw-cam-01", "cam-01", true))
	err := connectErr(t, clientOpts(b.Addr(), "u-cam-02", "pw-cam-02", "cam-02", true))
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "unavailable") {
		t.Fatalf("second client: %v, want server unavailable", err)
	}
}

// guess hammers the broker with wrong passwords from one address for d and
// returns how many the broker checked (its AuthFailures).
func guess(t *testing.T, bo fieldbroker.Backoff, d time.Duration) (checked uint64, b *fieldbroker.Broker) {
	b = startBroker(t, fieldbroker.Options{Handle: newRecorder().handle, Backoff: bo, MaxPendingPerAddr: 4})
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	var tries atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext(ctx, "tcp", b.Addr())
				if err != nil {
					continue
				}
				stop := context.AfterFunc(ctx, func() { _ = c.Close() })
				body := append(str("MQTT"), 4, 0xc2, 0, 30)
				body = append(append(append(body, str(fmt.Sprintf("g%d", g))...), str("u-cam-01")...), str(fmt.Sprintf("guess-%d-%d", g, i))...)
				_, _ = c.Write(append(append([]byte{0x10}, varint(len(body))...), body...))
				_, _ = io.ReadAll(c)
				tries.Add(1)
				stop()
				_ = c.Close()
			}
		}()
	}
	wg.Wait()
	s := b.Stats()
	t.Logf("backoff %+v: %d connection attempts, %d passwords checked in %v, %d throttled, %d pre-auth drops",
		bo, tries.Load(), s.AuthFailures, d, s.Throttled, s.PreAuthDropped)
	return s.AuthFailures, b
}

// Password guessing is slowed by the per-address and per-username
// back-off: far fewer guesses are checked than without it.
func TestPasswordGuessingSlowed(t *testing.T) {
	base, _ := guess(t, fieldbroker.Backoff{First: time.Nanosecond, Max: time.Nanosecond}, time.Second)
	slowed, b := guess(t, fieldbroker.Backoff{First: 100 * time.Millisecond, Max: time.Second}, 2*time.Second)
	if slowed*5 > base*2 { // per second: at least 5 times fewer
		t.Fatalf("%d guesses checked in 2 s with back-off, %d in 1 s without", slowed, base)
	}
	if s := b.Stats(); s.Throttled == 0 || s.Devices["cam-01"].AuthFailures != s.AuthFailures {
		t.Fatalf("stats %+v", s.Counters)
	}
	// The right password still gets in, from the guessing address too
	// (after the back-off).
	o := clientOpts(b.Addr(), "u-cam-01", "pw-cam-01", "cam-01", true).SetDialer(&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}})
	connectEventually(t, o)
}

// connectEventually retries a login the way a device does, while the
// broker frees pending slots.
func connectEventually(t *testing.T, o *paho.ClientOptions) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := connectErr(t, o)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no login within %v: %v", wait, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// No password or payload bytes reach the log, even at debug level, and a
// run of failed logins is one line plus one summary, not one line each.
func TestLogsHoldNoSecrets(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := startBroker(t, fieldbroker.Options{Handle: newRecorder().handle, Logger: log, Backoff: fastBackoff, LogEvery: time.Hour})
	const guesses = 20
	for i := range guesses {
		if _, ack, err := tryRaw(t, b.Addr(), 4, "u-cam-01", fmt.Sprintf("hunter2-secret-%d", i), "c"); err == nil && len(ack) > 1 && ack[1] == 0 {
			t.Fatal("wrong password accepted")
		}
	}
	// The password field used as the username, as a misconfigured device might.
	_, _, _ = tryRaw(t, b.Addr(), 4, "username-secret", "x", "c")
	// A second CONNECT after login: mochi logs the packet at WARN
	// (server.go receivePacket) — with its password.
	v := dialRaw(t, b.Addr(), 5, "u-cam-02", "pw-cam-02", "cam-02")
	body := append(str("MQTT"), 5, 0xc2, 0, 30, 0)
	body = append(append(append(body, str("cam-02")...), str("u-cam-02")...), str("second-connect-secret")...)
	v.send(0x10, body)
	_, _, _ = v.read()
	// A refused publish (another device's topic).
	v2 := dialRaw(t, b.Addr(), 5, "u-kiosk-1", "pw-kiosk-1", "kiosk-1")
	if r, _, err := v2.publish1(1, "field/cam-01/x", "payload-secret"); err != nil || r != 0x87 {
		t.Fatalf("refused publish: %#x %v", r, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, secret := range []string{"hunter2-secret", "username-secret", "second-connect-secret", "payload-secret", "pw-cam-02", "pw-kiosk-1"} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds %q", secret)
		}
	}
	// The log did record what happened.
	for _, want := range []string{"bad username or password", "error processing packet", "pk_type=Connect", "publish refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	refusals := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "login refused: bad username or password") && strings.Contains(l, "device=cam-01") {
			refusals++
		}
	}
	if refusals != 2 || !strings.Contains(out, fmt.Sprintf("more=%d", guesses-1)) {
		t.Errorf("%d login refusal lines for cam-01's %d guesses, want one and one summary with more=%d", refusals, guesses, guesses-1)
	}
	if strings.Contains(out, "level=ERROR") {
		t.Error("refusals logged at ERROR")
	}
	if t.Failed() {
		t.Log(out)
	}
}

// A device whose messages keep being refused is throttled: its reconnects
// (3.1.1) wait a growing delay, so it cannot loop at network speed.
func TestRefusedDeviceThrottled(t *testing.T) {
	rec := newRecorder()
	rec.decide = func(context.Context, call, int) error { return fmt.Errorf("store full: %w", fieldbroker.ErrRefused) }
	b := startBroker(t, fieldbroker.Options{Handle: rec.handle, Backoff: fieldbroker.Backoff{First: 100 * time.Millisecond, Max: 400 * time.Millisecond}})
	// Never acknowledged: 3.1.1 sees its connection closed, no PUBACK.
	v := dialRaw(t, b.Addr(), 4, "u-cam-01", "pw-cam-01", "cam-01")
	if r, _, err := v.publish1(1, "field/cam-01/alarm.sos", "full"); err == nil {
		t.Fatalf("a refused message was answered with %#x", r)
	}
	o := clientOpts(b.Addr(), "u-cam-01", "pw-cam-01", "cam-01", false).
		SetAutoReconnect(true).SetConnectRetryInterval(time.Millisecond).SetMaxReconnectInterval(10 * time.Millisecond).SetStore(fileStore(t))
	c := connect(t, o)
	c.Publish("field/cam-01/alarm.sos", 1, false, "full")
	const period = 2 * time.Second
	time.Sleep(period)
	calls, acc := rec.snapshot()
	s := b.Stats()
	t.Logf("in %v: %d handler calls, %d refused, %d throttled, %d connects", period, len(calls), s.Refused, s.Throttled, s.Connects)
	if len(acc) != 0 {
		t.Fatal("a refused message was stored")
	}
	// Without back-off paho reconnects every few milliseconds: hundreds.
	if len(calls) < 2 || len(calls) > 20 {
		t.Fatalf("%d tries in %v, want a few resends, throttled", len(calls), period)
	}
	if s.Throttled == 0 || s.Refused != uint64(len(calls)) {
		t.Fatalf("stats %+v", s.Counters)
	}
}

// A client asking keepalive 0 (none) or above the ceiling gets the ceiling:
// MQTT 5 is told in the CONNACK; an idle 3.1.1 client is dropped.
func TestKeepaliveCeiling(t *testing.T) {
	b := startBroker(t, fieldbroker.Options{Handle: newRecorder().handle, Keepalive: time.Second})
	_, ack, err := connectRaw(t, b.Addr(), 5, 0, "u-cam-01", "pw-cam-01", "cam-01")
	if err != nil || len(ack) < 3 || ack[1] != 0 {
		t.Fatalf("CONNACK %x %v", ack, err)
	}
	if !bytes.Contains(ack[3:], []byte{0x13, 0x00, 0x01}) { // Server Keep Alive = 1 s
		t.Fatalf("CONNACK properties %x lack Server Keep Alive 1", ack[3:])
	}
	// 3.1.1 asking 10 minutes, then silent: dropped after 1.5 s.
	v4, ack, err := connectRaw(t, b.Addr(), 4, 600, "u-cam-02", "pw-cam-02", "cam-02")
	if err != nil || len(ack) != 2 || ack[1] != 0 {
		t.Fatalf("3.1.1 CONNACK %x %v", ack, err)
	}
	if !closedByPeer(v4.c) {
		t.Fatal("an idle client asking keepalive 600 s was kept beyond the 1 s ceiling")
	}
}

// MQTT 5 topic aliases are refused: mochi would store one per publish.
func TestTopicAliasRefused(t *testing.T) {
	rec := newRecorder()
	b := startBroker(t, fieldbroker.Options{Handle: rec.handle})
	v := dialV5(t, b.Addr(), "u-cam-01", "pw-cam-01", "cam-01")
	body := append(str("field/cam-01/alarm.sos"), 0, 1, 3, 0x23, 0, 1) // packet id 1, Topic Alias 1
	v.send(0x32, append(body, "x"...))
	h, rb, err := v.read()
	if err == nil && (h>>4 != 14 || len(rb) == 0 || rb[0] != 0x94) {
		t.Fatalf("after a topic alias: packet %#x %x, want DISCONNECT 0x94 or close", h, rb)
	}
	if calls, _ := rec.snapshot(); count(calls, func(c call) bool { return c.Event != fieldbroker.EventOffline }) != 0 {
		t.Fatalf("handled %+v", calls)
	}
}

// A plain listener that is not loopback is a WARN at Start.
func TestPlainListenerOffLoopbackWarns(t *testing.T) {
	for _, c := range []struct {
		addr string
		warn bool
	}{{"127.0.0.1:0", false}, {"0.0.0.0:0", true}} {
		var buf syncBuffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
		b := startBroker(t, fieldbroker.Options{Listen: c.addr, Handle: newRecorder().handle, Logger: log})
		_ = b.Close()
		if got := strings.Contains(buf.String(), "plain MQTT listener reachable from the network"); got != c.warn {
			t.Errorf("listen %s: warned %v, want %v; log: %s", c.addr, got, c.warn, buf.String())
		}
	}
}
