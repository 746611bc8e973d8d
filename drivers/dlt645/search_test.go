package dlt645

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers/internal/addrsearch"
	"github.com/townlink/townlink/firmware-sim/dlt645sim"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serial"
	"github.com/townlink/townlink/hardware/serialsim"
	"github.com/townlink/townlink/internal/testkit"
)

var mode2400 = hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}

// simLine serves meters on a PTY and returns the gateway side, opened with
// the real serial backend.
func simLine(t *testing.T, meters ...*dlt645sim.Meter) hardware.Port {
	t.Helper()
	pty, err := serialsim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	gw, err := serial.Open(pty.Path(), mode2400)
	if err != nil {
		pty.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dlt645sim.NewLine(mode2400, meters...).Serve(ctx, pty) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		gw.Close()
		pty.Close()
	})
	return gw
}

func addrStrings(as []Address) []string {
	var s []string
	for _, a := range as {
		s = append(s, a.String())
	}
	slices.Sort(s)
	return s
}

// The simulated line emulates no wire time, so the searches leave
// SearchOptions.Mode unset: each probe listens for ReplyDelay only.

// Three 2007 meters, a silent one and a 1997 meter share a line: the
// 2007 search resolves the collision of the three and finds neither the
// silent meter nor the 1997 one; the 1997 search finds only that one.
func TestSearchMultidropLine(t *testing.T) {
	silent := dlt645sim.NewMeter("202612070004", dlt645sim.V2007)
	silent.SetFault(dlt645sim.Silent)
	p := simLine(t,
		dlt645sim.NewMeter("202612070001", dlt645sim.V2007),
		dlt645sim.NewMeter("202612070002", dlt645sim.V2007),
		dlt645sim.NewMeter("202612070013", dlt645sim.V2007),
		silent,
		dlt645sim.NewMeter("199700000042", dlt645sim.V1997))
	ctx := context.Background()
	probes, lastLeft := 0, -1
	got, err := Search(ctx, p, SearchOptions{Version: V2007, ReplyDelay: 150 * time.Millisecond,
		Progress: func(done, left, _ int) { probes, lastLeft = done, left }})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"202612070001", "202612070002", "202612070013"}; !slices.Equal(addrStrings(got), want) {
		t.Errorf("2007 search found %v, want %v", addrStrings(got), want)
	}
	// The root is asked twice (a collision), then the 100 BCD values of
	// A0, each answered by one meter at most, and each meter once more at
	// its own address.
	if probes != 105 || lastLeft != 0 {
		t.Errorf("progress ended at %d probes, %d left; want 105, 0", probes, lastLeft)
	}
	got, err = Search(ctx, p, SearchOptions{Version: V1997, ReplyDelay: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"199700000042"}; !slices.Equal(addrStrings(got), want) {
		t.Errorf("1997 search found %v, want %v", addrStrings(got), want)
	}
}

// One meter alone answers the first probe, 0x13 to AA…AA, as in the
// public capture in testdata (request and reply bytes from frames.json).
func TestSearchOneMeterRealFrames(t *testing.T) {
	req := testkit.Unhex(t, "FE FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16")
	reply := testkit.Unhex(t, "68 01 01 19 00 00 00 68 93 06 34 34 4C 33 33 33 D1 16")
	// The answer is confirmed at the meter's own address (a read of the
	// energy total, answered here with "no such data": still the meter).
	addr, _ := ParseAddress("000000190101")
	p := serialsim.NewScript(t, serialsim.Step{Expect: req, Reply: reply},
		serialsim.Step{Expect: Encode(SearchRequest(V2007, addr, DefaultPreamble)), Reply: Encode(Frame{Addr: addr, Control: 0xD1, Data: []byte{2}})})
	got, err := Search(context.Background(), p, SearchOptions{Version: V2007, ReplyDelay: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"000000190101"}; !slices.Equal(addrStrings(got), want) {
		t.Errorf("found %v, want %v", addrStrings(got), want)
	}
}

func TestSearchStopsOnCancel(t *testing.T) {
	p := simLine(t, dlt645sim.NewMeter("202612070001", dlt645sim.V2007), dlt645sim.NewMeter("202612070002", dlt645sim.V2007))
	ctx, cancel := context.WithCancel(context.Background())
	got, err := Search(ctx, p, SearchOptions{Version: V2007, ReplyDelay: 100 * time.Millisecond,
		Progress: func(done, _, _ int) {
			if done == 5 { // root twice, A0 = 00, A0 = 01, its meter alone
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if want := []string{"202612070001"}; !slices.Equal(addrStrings(got), want) {
		t.Errorf("found %v before the cancel, want %v", addrStrings(got), want)
	}
}

func TestClassifySearch(t *testing.T) {
	wild, _ := ParseAddress(WildcardAddress)
	short, _ := ParseAddress("AAAAAAAAAA01")
	one, _ := ParseAddress("202612070001")
	other, _ := ParseAddress("202612070002")
	readAddr := SearchRequest(V2007, wild, 0)
	read := SearchRequest(V2007, short, 0)
	cases := []struct {
		name   string
		req    Frame
		frames [][]byte
		noise  int
		want   addrsearch.Outcome
	}{
		{"nothing", read, nil, 0, addrsearch.Silence},
		{"noise only", read, nil, 3, addrsearch.Collision},
		{"one reply", read, [][]byte{Encode(Frame{Addr: one, Control: 0x91, Data: []byte{0, 0, 1, 0, 0x12, 0x34, 0, 0}})}, 0, addrsearch.Answer},
		{"abnormal reply", read, [][]byte{Encode(Frame{Addr: one, Control: 0xD1, Data: []byte{2}})}, 0, addrsearch.Answer},
		{"reply and noise", read, [][]byte{Encode(Frame{Addr: one, Control: 0x91})}, 1, addrsearch.Collision},
		{"two replies", read, [][]byte{Encode(Frame{Addr: one, Control: 0x91}), Encode(Frame{Addr: one, Control: 0x91})}, 0, addrsearch.Collision},
		{"address outside the pattern", read, [][]byte{Encode(Frame{Addr: other, Control: 0x91})}, 0, addrsearch.Collision},
		{"read address", readAddr, [][]byte{Encode(Frame{Addr: one, Control: 0x93, Data: one[:]})}, 0, addrsearch.Answer},
		{"read address, DATA differs", readAddr, [][]byte{Encode(Frame{Addr: one, Control: 0x93, Data: other[:]})}, 0, addrsearch.Collision},
		{"another function", readAddr, [][]byte{Encode(Frame{Addr: one, Control: 0x91})}, 0, addrsearch.Collision},
	}
	for _, c := range cases {
		got, addr := ClassifySearch(c.req, c.frames, c.noise)
		if got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
		if got == addrsearch.Answer && Address(addr) != one {
			t.Errorf("%s: address % X, want %s", c.name, addr, one)
		}
	}
}

// FuzzSearchReply feeds arbitrary line bytes to the search's listener and
// classifier: no panic, and an Answer always names an address the
// request's pattern matches.
func FuzzSearchReply(f *testing.F) {
	f.Add(testkit.Unhex(f, "68 01 01 19 00 00 00 68 93 06 34 34 4C 33 33 33 D1 16"))
	f.Add(testkit.Unhex(f, "FE FE 68 01 01 19 00 00 00 68 93 06 34 34 4C 33 33 33 D1 16 00"))
	f.Add([]byte{0x68, 0x68, 0x68})
	wild, _ := ParseAddress(WildcardAddress)
	short, _ := ParseAddress("AAAAAAAA0101")
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, req := range []Frame{SearchRequest(V2007, wild, 0), SearchRequest(V2007, short, 0), SearchRequest(V1997, short, 0)} {
			h := addrsearch.Parse(b, Split, preambleByte, isReply)
			out, addr := ClassifySearch(req, h.Frames, h.Noise)
			if out == addrsearch.Answer && (len(addr) != 6 || !req.Addr.Matches(Address(addr))) {
				t.Fatalf("% X: answer % X to pattern %s", b, addr, req.Addr)
			}
			if len(b) == 0 && out != addrsearch.Silence {
				t.Fatalf("nothing heard is %v", out)
			}
		}
	})
}
