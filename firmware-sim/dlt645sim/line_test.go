package dlt645sim

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/townlink/townlink/firmware-sim/internal/rs485"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/internal/testkit"
)

var mode2400 = hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}

func addrOf(t *testing.T, s string) [6]byte {
	t.Helper()
	a, err := parseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func send(t *testing.T, gw hardware.Port, b []byte) {
	t.Helper()
	if err := gw.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := gw.Write(b); err != nil {
		t.Fatal(err)
	}
}

// readFrame reads until a valid frame has arrived (or fails the test after
// a generous deadline) and returns it with every byte read.
func readFrame(t *testing.T, gw hardware.Port) (frame, []byte) {
	t.Helper()
	var got []byte
	buf := make([]byte, 256)
	deadline := time.Now().Add(testkit.ReplyTimeout)
	if err := gw.SetReadTimeout(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for time.Now().Before(deadline) {
		n, err := gw.Read(buf)
		got = append(got, buf[:n]...)
		if f, _, _, _, ok := scan(got); ok {
			return f, got
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal(err)
		}
	}
	t.Fatalf("no valid frame within %v; got % X", testkit.ReplyTimeout, got)
	return frame{}, nil
}

// Three 2007 meters and a 1997 meter on one PTY: each hand-built request
// is answered by the addressed meter only; a broadcast time sync sets every
// clock and gets no reply; the wildcard makes them collide.
func TestMultiDropLine(t *testing.T) {
	meters := []*Meter{
		NewMeter("000000000001", V2007),
		NewMeter("000000000002", V2007),
		NewMeter("000000000003", V2007),
		NewMeter("000000000097", V1997),
	}
	for i, m := range meters {
		m.Set("energy_kwh", []string{"1.11", "2.22", "3.33", "97.97"}[i])
		m.SetPreamble(i) // 0..3 FE
	}
	line := NewLine(mode2400, meters...)
	gw := testkit.OpenServedPTY(t, mode2400, line.Serve)

	for i, m := range meters[:3] {
		// Noise and a varying number of FE in front of each request.
		req := append([]byte{0x00, 0x13, 0xFE}[:i], frame{addr: m.addr, c: 0x11, data: diBytes(0x00010000)}.encode(i+1)...)
		send(t, gw, req)
		f, raw := readFrame(t, gw)
		if f.addr != m.addr || f.c != 0x91 {
			t.Fatalf("meter %d: reply from % X C %02X", i, f.addr, f.c)
		}
		if want := rs485.BCD(int64(111*(i+1)), 4); !bytes.Equal(f.data[4:], want) {
			t.Errorf("meter %d: energy % X, want % X", i, f.data[4:], want)
		}
		if !bytes.HasPrefix(raw, bytes.Repeat([]byte{0xFE}, i)) {
			t.Errorf("meter %d: reply % X does not start with %d FE", i, raw, i)
		}
		if rest := testkit.ReadQuiet(t, gw, 200*time.Millisecond); len(rest) > 0 {
			t.Errorf("meter %d: another device answered too: % X", i, rest)
		}
	}
	m97 := meters[3]
	send(t, gw, frame{addr: m97.addr, c: 0x01, data: []byte{0x10, 0x90}}.encode(2))
	if f, _ := readFrame(t, gw); f.addr != m97.addr || f.c != 0x81 || !bytes.Equal(f.data, []byte{0x10, 0x90, 0x97, 0x97, 0x00, 0x00}) {
		t.Fatalf("1997 meter: % X C %02X data % X", f.addr, f.c, f.data)
	}
	// An address nobody has: silence.
	send(t, gw, frame{addr: addrOf(t, "000000000004"), c: 0x11, data: diBytes(0x00010000)}.encode(4))
	if got := testkit.ReadQuiet(t, gw, 300*time.Millisecond); len(got) > 0 {
		t.Fatalf("a request to nobody was answered: % X", got)
	}

	// Broadcast time sync, 2 minutes ahead of every clock: applied by all, no reply.
	target := time.Now().Add(2 * time.Minute).Truncate(time.Second)
	sync := frame{addr: [6]byte{0x99, 0x99, 0x99, 0x99, 0x99, 0x99}, c: 0x08, data: []byte{
		rs485.BCDByte(target.Second()), rs485.BCDByte(target.Minute()), rs485.BCDByte(target.Hour()),
		rs485.BCDByte(target.Day()), rs485.BCDByte(int(target.Month())), rs485.BCDByte(target.Year() % 100)}}
	send(t, gw, sync.encode(4))
	if got := testkit.ReadQuiet(t, gw, 500*time.Millisecond); len(got) > 0 {
		t.Fatalf("broadcast answered: % X", got)
	}
	for i, m := range meters {
		if d := m.Clock().Sub(target); d < 0 || d > 10*time.Second {
			t.Errorf("meter %d clock %v, want about %v", i, m.Clock(), target)
		}
	}
	if s := line.Stats(); s.TimeSyncs != 4 || s.Broadcasts != 1 {
		t.Errorf("stats %+v: want 4 time syncs from 1 broadcast", s)
	}

	// The wildcard read-address goes to every 2007 meter: they collide.
	send(t, gw, testkit.Unhex(t, "FE FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16"))
	got := testkit.ReadReply(t, gw, 300*time.Millisecond)
	if len(got) == 0 {
		t.Fatal("nothing heard after a wildcard read-address")
	}
	for _, m := range meters[:3] {
		single := m.handle(frame{addr: m.addr, c: 0x13})
		if bytes.Equal(got, single.reply) {
			t.Errorf("collision looked like a clean reply from %s", m.Address())
		}
	}
	if s := line.Stats(); s.Collisions != 1 {
		t.Errorf("collisions %d, want 1", s.Collisions)
	}
}

// Every fault is visible on the wire.
func TestFaultsOnTheWire(t *testing.T) {
	m := NewMeter("003411001043", V2007)
	m.Set("voltage_a_v", "229.7")
	gw := testkit.OpenServedPTY(t, mode2400, NewLine(mode2400, m).Serve)
	req := frame{addr: m.addr, c: 0x11, data: diBytes(0x02010100)}.encode(4)
	clean := testkit.Unhex(t, "FE FE FE FE 68 43 10 00 11 34 00 68 91 06 33 34 34 35 CA 55 EE 16")

	send(t, gw, req)
	if got := testkit.ReadReply(t, gw, 300*time.Millisecond); !bytes.Equal(got, clean) {
		t.Fatalf("no fault: % X", got)
	}

	m.SetFault(Silent)
	send(t, gw, req)
	if got := testkit.ReadQuiet(t, gw, time.Second); len(got) != 0 {
		t.Errorf("silent: heard % X within 1 s", got)
	}

	m.SetFault(BadChecksum)
	send(t, gw, req)
	got := testkit.ReadReply(t, gw, 300*time.Millisecond)
	if len(got) != len(clean) || got[len(got)-2] != clean[len(clean)-2]+1 || !bytes.Equal(got[:len(got)-2], clean[:len(clean)-2]) {
		t.Errorf("bad checksum: % X", got)
	}
	if _, _, _, _, ok := scan(got); ok {
		t.Error("bad checksum: the reply still parses")
	}

	m.SetFault(NoiseBefore)
	send(t, gw, req)
	got = testkit.ReadReply(t, gw, 300*time.Millisecond)
	if n := len(got) - len(clean); n < 1 || n > 8 || !bytes.Equal(got[n:], clean) || bytes.IndexByte(got[:n], 0x68) >= 0 {
		t.Errorf("noise before: % X", got)
	}

	m.SetFault(WrongAddress)
	send(t, gw, req)
	f, _ := readFrame(t, gw)
	if f.addr == m.addr || f.c != 0x91 {
		t.Errorf("wrong address: reply from % X C %02X", f.addr, f.c)
	}

	m.SetFault(CutOff)
	send(t, gw, req)
	got = testkit.ReadReply(t, gw, 300*time.Millisecond)
	if len(got) == 0 || len(got) >= len(clean) || !bytes.HasPrefix(clean, got) {
		t.Errorf("cut off: % X", got)
	}

	m.SetFault(Garbage(1))
	send(t, gw, req)
	got = testkit.ReadReply(t, gw, 300*time.Millisecond)
	if len(got) != len(clean) || bytes.Equal(got, clean) {
		t.Errorf("garbage: % X", got)
	}

	m.SetFault(Slow(400 * time.Millisecond))
	send(t, gw, req)
	if got := testkit.ReadQuiet(t, gw, 200*time.Millisecond); len(got) != 0 {
		t.Errorf("slow: answered within 200 ms: % X", got)
	}
	if f, _ := readFrame(t, gw); f.c != 0x91 {
		t.Errorf("slow: late reply C %02X", f.c)
	}

	m.SetFault(None)
	send(t, gw, req)
	if got := testkit.ReadReply(t, gw, 300*time.Millisecond); !bytes.Equal(got, clean) {
		t.Fatalf("fault cleared: % X", got)
	}
}

// With WireTime at 2400 8E1 the round trip lasts at least the request's and
// the reply's time on the wire plus the turnaround.
func TestWireTime(t *testing.T) {
	m := NewMeter("003411001043", V2007)
	m.Set("voltage_a_v", "229.7")
	line := NewLine(mode2400, m)
	line.WireTime = true
	line.Turnaround = 30 * time.Millisecond
	gw := testkit.OpenServedPTY(t, mode2400, line.Serve)
	req := frame{addr: m.addr, c: 0x11, data: diBytes(0x02010100)}.encode(4)
	const replyLen = 22 // 4 FE + 18
	want := mode2400.WireTime(len(req)) + line.Turnaround + mode2400.WireTime(replyLen)
	for range 3 {
		start := time.Now()
		send(t, gw, req)
		_, raw := readFrame(t, gw)
		took := time.Since(start)
		if len(raw) != replyLen {
			t.Fatalf("reply % X", raw)
		}
		if took < want {
			t.Errorf("round trip %v, shorter than the wire time %v", took, want)
		}
		t.Logf("round trip %v, wire time %v", took, want)
	}
}
