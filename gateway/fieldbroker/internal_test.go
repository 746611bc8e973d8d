package fieldbroker

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

func FuzzReadConnect(f *testing.F) {
	f.Add([]byte{0x10, 0x00})
	f.Add([]byte{0x10, 0x04, 0, 4, 'M', 'Q', 'T', 'T'})
	f.Add([]byte{0x10, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{0x10, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{0x30, 0x02, 0, 0})
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 64
		out, err := readConnect(bytes.NewReader(in), max)
		if err != nil {
			if out != nil {
				t.Fatalf("error %v with %d bytes", err, len(out))
			}
			return
		}
		if !bytes.HasPrefix(in, out) || out[0] != connectType {
			t.Fatalf("read %x from %x", out, in)
		}
		n, hdr := 0, 0
		for i, mult := 1, 1; ; i, mult = i+1, mult*128 {
			n += int(out[i]&0x7f) * mult
			if out[i]&0x80 == 0 {
				hdr = i + 1
				break
			}
		}
		if n > max || len(out) != hdr+n {
			t.Fatalf("remaining length %d, header %d, read %d", n, hdr, len(out))
		}
	})
}

func TestReadConnectErrors(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		want error
	}{
		{[]byte{0x30, 0}, errNotConnect},
		{[]byte{0x10, 0xff, 0xff, 0xff, 0xff, 0x01}, errBadLength},
		{[]byte{0x10, 0xff, 0xff, 0xff, 0x7f}, errConnectTooLarge},
		{[]byte{0x10, 0x80, 0x01}, errConnectTooLarge}, // 128 > 64
		{[]byte{0x10, 0x05, 1, 2}, io.ErrUnexpectedEOF},
		{nil, io.EOF},
	} {
		if _, err := readConnect(bytes.NewReader(c.in), 64); !errors.Is(err, c.want) {
			t.Errorf("%x: %v, want %v", c.in, err, c.want)
		}
	}
}

func TestBackoffWait(t *testing.T) {
	bo := Backoff{First: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	for n, w := range want {
		if got := bo.wait(n); got != w {
			t.Errorf("wait(%d) = %v, want %v", n, got, w)
		}
	}
	if got := bo.wait(1 << 30); got != time.Second {
		t.Errorf("wait(huge) = %v", got)
	}
}

func TestStrikes(t *testing.T) {
	s := newStrikes(Backoff{First: time.Second, Max: 4 * time.Second})
	t0 := time.Unix(1000, 0)
	if d := s.delay(t0, "a", "u"); d != 0 {
		t.Fatalf("fresh delay %v", d)
	}
	s.fail(t0, "a", "u")
	s.fail(t0, "a")
	if d := s.delay(t0, "a", "u"); d != 2*time.Second {
		t.Fatalf("after 2 failures of a: %v", d)
	}
	if d := s.delay(t0, "u"); d != time.Second {
		t.Fatalf("after 1 failure of u: %v", d)
	}
	if d := s.delay(t0.Add(8*time.Second), "a"); d != 0 {
		t.Fatalf("not forgotten after 2·Max: %v", d)
	}
	s.fail(t0.Add(8*time.Second), "a")
	if d := s.delay(t0.Add(8*time.Second), "a"); d != time.Second {
		t.Fatalf("a fresh run after forgetting: %v", d)
	}
	// A full table: new keys share one entry, which is slowed too.
	for i := range maxStrikeKeys + 10 {
		s.fail(t0.Add(8*time.Second), "k"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String())
	}
	if len(s.m) > maxStrikeKeys+1 {
		t.Fatalf("table grew to %d", len(s.m))
	}
	if d := s.delay(t0.Add(8*time.Second), "never-seen"); d == 0 {
		t.Fatal("a new key on a full table is not slowed")
	}
}

func TestScrubRemovesPackets(t *testing.T) {
	var buf bytes.Buffer
	q := newQuietLog(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), time.Hour)
	log := slog.New(&mochiLog{q: q}).With("component", "mochi").WithGroup("g")
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}}
	pk.Connect.Password = []byte("s3cret-pw")
	pk.Payload = []byte("s3cret-payload")
	log.Warn("error processing packet", "pk", pk, "packet", &pk, "other", "kept")
	out := buf.String()
	if strings.Contains(out, "s3cret") || !strings.Contains(out, "pk_type=Connect") || !strings.Contains(out, "other=kept") || !strings.Contains(out, "component=mochi") {
		t.Fatalf("log: %s", out)
	}
}
