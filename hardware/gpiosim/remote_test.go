package gpiosim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/hardware/gpio"
)

func TestParseMessage(t *testing.T) {
	good := map[string]gpio.Edge{
		"0 0":                   {Level: gpio.Low, Time: time.Unix(0, 0)},
		"5 1":                   {Level: gpio.High, Time: time.Unix(0, 5)},
		"1767225600000000001 1": {Level: gpio.High, Time: time.Unix(1767225600, 1)},
		"1767225600999999999 0": {Level: gpio.Low, Time: time.Unix(1767225600, 999999999)},
		"9223372036854775807 0": {Level: gpio.Low, Time: time.Unix(0, 1<<63-1)},
		"0000000000000000042 1": {Level: gpio.High, Time: time.Unix(0, 42)}, // leading zeros: still ≤ 19 digits
	}
	for in, want := range good {
		e, ok, err := ParseMessage([]byte(in))
		if err != nil || !ok || e.Level != want.Level || !e.Time.Equal(want.Time) {
			t.Errorf("ParseMessage(%q) = %v %v %v, want %v", in, e, ok, err, want)
		}
	}
	if got := string(AppendMessage(nil, gpio.Edge{Level: gpio.High, Time: time.Unix(1767225600, 1)})); got != "1767225600000000001 1\n" {
		t.Errorf("AppendMessage = %q", got)
	}
	if _, ok, err := ParseMessage([]byte("# townsim DI1: pulse water meter")); ok || err != nil {
		t.Errorf("comment: ok %v err %v", ok, err)
	}
	bad := map[string]string{
		"":                                `want "<unix-nanos> <0|1>"`,
		"12345":                           `want "<unix-nanos> <0|1>"`,
		" 1":                              "time \"\" is not 1 to 19 digits",
		"12345678901234567890 1":          "is not 1 to 19 digits",
		"9223372036854775808 1":           "overflows int64",
		"-5 1":                            "is not a number of nanoseconds",
		"+5 1":                            "is not a number of nanoseconds",
		"5 2":                             `level "2" is not 0 or 1`,
		"5 1\r":                           `level "1\r" is not 0 or 1`,
		"5  1":                            `level " 1" is not 0 or 1`,
		"5 1 ":                            `level "1 " is not 0 or 1`,
		"5 high":                          `level "high" is not 0 or 1`,
		"0x10 1":                          "is not a number of nanoseconds",
		strings.Repeat("#", MaxMessage+1): "line of 257 bytes",
	}
	for in, want := range bad {
		_, ok, err := ParseMessage([]byte(in))
		if err == nil || ok || !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseMessage(%q) = ok %v, %v; want an ErrProtocol containing %q", in, ok, err, want)
		}
	}
}

func TestRemoteDecoderChecksTheSequence(t *testing.T) {
	var d remoteDecoder
	d.feed([]byte("# hello\n100 1\n90 0\n95 1\n95 0"))
	for i, want := range []gpio.Edge{{Level: gpio.High, Time: time.Unix(0, 100)}, {Level: gpio.Low, Time: time.Unix(0, 90)}, {Level: gpio.High, Time: time.Unix(0, 95)}} {
		e, ok, err := d.next()
		if err != nil || !ok || e.Level != want.Level || !e.Time.Equal(want.Time) {
			t.Fatalf("message %d = %v %v %v, want %v", i, e, ok, err, want)
		}
	}
	// A partial line waits for its newline.
	if _, ok, err := d.next(); ok || err != nil {
		t.Fatalf("partial line: %v %v", ok, err)
	}
	d.feed([]byte("\n"))
	if e, ok, err := d.next(); !ok || err != nil || e.Level != gpio.Low {
		t.Fatalf("completed line: %v %v %v", e, ok, err)
	}

	for name, tc := range map[string]struct{ in, want string }{
		"same level":     {"100 1\n200 0\n300 0\n", "at byte 12: edge at " + time.Unix(0, 300).Format(time.RFC3339Nano) + " to Low, but the line is already Low"},
		"back in time":   {"100 1\n200 0\n150 1\n", "at byte 12: edge at " + time.Unix(0, 150).Format(time.RFC3339Nano) + " is before the previous one"},
		"garbage":        {"100 1\nhello\n", "at byte 6: gpiosim: bad remote line message: \"hello\""},
		"no newline":     {"100 1\n" + strings.Repeat("1", MaxMessage+1), "at byte 6: no newline in 257 bytes"},
		"bad state line": {"1 x\n", "at byte 0: gpiosim: bad remote line message: \"1 x\": level \"x\""},
	} {
		var d remoteDecoder
		d.feed([]byte(tc.in))
		var err error
		for range 5 {
			var ok bool
			if _, ok, err = d.next(); err != nil || !ok {
				break
			}
		}
		if err == nil || !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrProtocol containing %q", name, err, tc.want)
		}
	}
}

// rawServer is a hand-written simulator: the test writes protocol bytes.
type rawServer struct {
	path  string
	conns chan net.Conn
}

func newRawServer(t *testing.T) *rawServer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "DI1")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{path: path, conns: make(chan net.Conn, 4)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(s.conns)
		for c := range s.conns {
			c.Close()
		}
	})
	return s
}

// open connects a client after the server side has written first.
func (s *rawServer) open(t *testing.T, first string) (gpio.Line, net.Conn) {
	t.Helper()
	type res struct {
		l   gpio.Line
		err error
	}
	got := make(chan res, 1)
	go func() {
		l, err := Dial(s.path)
		got <- res{l, err}
	}()
	var c net.Conn
	select {
	case c = <-s.conns:
	case <-time.After(10 * time.Second):
		t.Fatal("no connection")
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte(first)); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.l.Close() })
	return r.l, c
}

func send(t *testing.T, c net.Conn, edges ...gpio.Edge) {
	t.Helper()
	var b []byte
	for _, e := range edges {
		b = AppendMessage(b, e)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

func TestRemoteDeliversEdgesAtTheirTimeBeforeDeadlines(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := newRawServer(t)
	l, c := s.open(t, "# townsim DI1\n1000 1\n")
	if lvl, err := l.Read(); err != nil || lvl != gpio.High {
		t.Fatalf("Read = %v %v, want High from the state line", lvl, err)
	}

	// An edge sent ahead is held until its time, with its exact stamp.
	at := time.Now().Add(80 * time.Millisecond).Round(time.Microsecond)
	send(t, c, gpio.Edge{Level: gpio.Low, Time: at})
	e, err := l.WaitEdge(ctx, time.Time{})
	if err != nil || e.Level != gpio.Low || !e.Time.Equal(at) {
		t.Fatalf("WaitEdge = %v %v, want Low at %v", e, err, at)
	}
	if now := time.Now(); now.Before(at) {
		t.Fatalf("edge at %v delivered early, at %v", at, now)
	}
	if lvl, _ := l.Read(); lvl != gpio.Low {
		t.Fatalf("Read after the edge = %v", lvl)
	}

	// An edge after the deadline stays queued; the deadline comes first.
	later := time.Now().Add(300 * time.Millisecond)
	send(t, c, gpio.Edge{Level: gpio.High, Time: later})
	deadline := time.Now().Add(50 * time.Millisecond)
	e, err = l.WaitEdge(ctx, deadline)
	if !errors.Is(err, os.ErrDeadlineExceeded) || e.Level != gpio.Low || e.Time.Before(deadline) {
		t.Fatalf("WaitEdge with deadline = %v %v, want the deadline at Low", e, err)
	}
	if lvl, _ := l.Read(); lvl != gpio.Low {
		t.Fatalf("Read before the queued edge's time = %v", lvl)
	}
	e, err = l.WaitEdge(ctx, later)
	if err != nil || e.Level != gpio.High || !e.Time.Equal(later) {
		t.Fatalf("edge at the deadline = %v %v, want High at %v", e, err, later)
	}

	// An edge that comes after the line gave out a later time (a passed
	// deadline) is reported at that time, never before it.
	e, err = l.WaitEdge(ctx, time.Now())
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("passed deadline: %v", err)
	}
	floor := e.Time
	if !floor.After(later) {
		t.Fatalf("deadline time %v not after the last edge %v", floor, later)
	}
	send(t, c, gpio.Edge{Level: gpio.Low, Time: later}) // as late as the protocol allows

	e, err = l.WaitEdge(ctx, time.Time{})
	if err != nil || e.Level != gpio.Low || !e.Time.Equal(floor) {
		t.Fatalf("late edge = %v %v, want Low at the passed deadline %v", e, err, floor)
	}
	if now := l.Now(); now.Before(floor) {
		t.Fatalf("Now %v before %v", now, floor)
	}
}

// A reader that comes back late (a slow store, a busy machine) finds the
// edges that wait in the socket before it is told a deadline passed: none
// is stamped late, and the read deadline left from an earlier wait does
// not turn into an error.
func TestRemoteLateReaderGetsWaitingEdgesFirst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := newRawServer(t)
	l, c := s.open(t, "1 0\n")
	if _, err := l.WaitEdge(ctx, time.Now().Add(5*time.Millisecond)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("first wait: %v", err)
	}
	t1 := time.Now().Add(10 * time.Millisecond)
	t2 := t1.Add(time.Millisecond)
	send(t, c, gpio.Edge{Level: gpio.High, Time: t1}, gpio.Edge{Level: gpio.Low, Time: t2})
	time.Sleep(60 * time.Millisecond) // the reader is away
	deadline := t1.Add(20 * time.Millisecond)
	for _, want := range []gpio.Edge{{Level: gpio.High, Time: t1}, {Level: gpio.Low, Time: t2}} {
		e, err := l.WaitEdge(ctx, deadline)
		if err != nil || e.Level != want.Level || !e.Time.Equal(want.Time) {
			t.Fatalf("WaitEdge = %v %v, want %v", e, err, want)
		}
	}
	e, err := l.WaitEdge(ctx, deadline)
	if !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, gpio.ErrLine) || e.Time.Before(deadline) || e.Level != gpio.Low {
		t.Fatalf("after the edges: %v %v, want the passed deadline", e, err)
	}
}

func TestRemoteWaitEndsWithContextAndClose(t *testing.T) {
	s := newRawServer(t)
	l, _ := s.open(t, "1 0\n")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel)
	if _, err := l.WaitEdge(ctx, time.Time{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitEdge after cancel = %v", err)
	}
	// The line still works after a cancelled wait.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel2()
	if _, err := l.WaitEdge(ctx2, time.Now().Add(20*time.Millisecond)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WaitEdge after a cancelled one = %v", err)
	}
	time.AfterFunc(30*time.Millisecond, func() { l.Close() })
	if _, err := l.WaitEdge(ctx2, time.Time{}); !errors.Is(err, gpio.ErrClosed) {
		t.Fatalf("WaitEdge after Close = %v", err)
	}
	if _, err := l.Read(); !errors.Is(err, gpio.ErrClosed) {
		t.Fatalf("Read after Close = %v", err)
	}
}

func TestRemoteLineErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := newRawServer(t)

	// The simulator goes away: a line error, so a gpio.Input reconnects.
	l, c := s.open(t, "1 0\n")
	c.Close()
	if _, err := l.WaitEdge(ctx, time.Time{}); !errors.Is(err, gpio.ErrLine) || !strings.Contains(err.Error(), "the simulator closed the connection") {
		t.Fatalf("after EOF: %v", err)
	}

	// A protocol error is a line error too, naming the bad message.
	l, c = s.open(t, "1 0\n")
	if _, err := c.Write([]byte("2 0\n")); err != nil {
		t.Fatal(err)
	}
	_, err := l.WaitEdge(ctx, time.Time{})
	if !errors.Is(err, gpio.ErrLine) || !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "but the line is already Low") {
		t.Fatalf("after a repeated level: %v", err)
	}

	// A bad state line fails the request.
	go func() {
		if c, ok := <-s.conns; ok {
			c.Write([]byte("hello\n"))
		}
	}()
	if _, err := Dial(s.path); !errors.Is(err, gpio.ErrLine) || !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "state line") {
		t.Fatalf("Open with a bad state line: %v", err)
	}

	// No simulator, no path.
	if _, err := Dial(filepath.Join(t.TempDir(), "DI9")); !errors.Is(err, gpio.ErrLine) || !strings.Contains(err.Error(), "is townsim running?") {
		t.Fatalf("Open without a simulator: %v", err)
	}
	if _, err := Dial(""); !errors.Is(err, gpio.ErrNoLine) {
		t.Fatalf("Dial(\"\") = %v", err)
	}
}

func TestRemotePath(t *testing.T) {
	for in, want := range map[string]string{"sim:/a/b": "/a/b", "unix:rel/DI1": "rel/DI1", "sim:": ""} {
		if got, ok := SocketPath(in); !ok || got != want {
			t.Errorf("SocketPath(%q) = %q %v", in, got, ok)
		}
	}
	for _, in := range []string{"DI1", "gpiochip0:17", "/dev/gpiochip0:3", "SIM:/a"} {
		if _, ok := SocketPath(in); ok {
			t.Errorf("SocketPath(%q) is remote", in)
		}
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{"0 0", "1767225600000000001 1", "9223372036854775807 0", "9223372036854775808 1",
		"# comment", "", " ", "5 2", "-1 1", "00001 0", "1 1\r", "12345678901234567890 0"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		e, ok, err := ParseMessage(line)
		if err != nil {
			if ok || !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v with ok %v", err, ok)
			}
			return
		}
		if !ok {
			if len(line) == 0 || line[0] != '#' {
				t.Fatalf("%q: not an edge, not an error", line)
			}
			return
		}
		out := AppendMessage(nil, e)
		e2, ok2, err2 := ParseMessage(bytes.TrimSuffix(out, []byte("\n")))
		if err2 != nil || !ok2 || e2.Level != e.Level || !e2.Time.Equal(e.Time) {
			t.Fatalf("%q → %v → %q → %v %v %v", line, e, out, e2, ok2, err2)
		}
	})
}

// FuzzRemoteDecoder feeds a stream in two chunks: whatever it is, the
// decoder returns a state line and then edges that alternate and never go
// back in time, or an ErrProtocol.
func FuzzRemoteDecoder(f *testing.F) {
	f.Add([]byte("# hi\n100 1\n200 0\n300 1\n"), uint16(3))
	f.Add([]byte("100 1\n200 1\n"), uint16(7))
	f.Add([]byte("100 1\n50 0\n"), uint16(0))
	f.Add([]byte("1 0\n2 1\n3 0\n4 1\n5 0\n6"), uint16(12))
	f.Add([]byte(strings.Repeat("9", 300)), uint16(100))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		cut := int(split) % (len(data) + 1)
		var d remoteDecoder
		var got []gpio.Edge
		for _, chunk := range [][]byte{data[:cut], data[cut:]} {
			d.feed(chunk)
			for {
				e, ok, err := d.next()
				if err != nil {
					if !errors.Is(err, ErrProtocol) {
						t.Fatalf("error %v is not ErrProtocol", err)
					}
					return
				}
				if !ok {
					break
				}
				got = append(got, e)
			}
		}
		for i := 2; i < len(got); i++ {
			if got[i].Level == got[i-1].Level || got[i].Time.Before(got[i-1].Time) {
				t.Fatalf("edge %d %v after %v", i, got[i], got[i-1])
			}
		}
		if len(got) > 1 && got[1].Level == got[0].Level {
			t.Fatalf("first edge %v does not change the state %v", got[1], got[0])
		}
		if n := bytes.Count(data, []byte("\n")); len(got) > n {
			t.Fatal(fmt.Sprintf("%d messages from %d lines", len(got), n))
		}
	})
}
