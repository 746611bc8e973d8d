package cjt188

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers/internal/addrsearch"
	"github.com/townlink/townlink/firmware-sim/cjt188sim"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serial"
	"github.com/townlink/townlink/hardware/serialsim"
	"github.com/townlink/townlink/internal/testkit"
)

func simLine(t *testing.T, meters ...*cjt188sim.Meter) hardware.Port {
	t.Helper()
	mode := DefaultMode()
	pty, err := serialsim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	gw, err := serial.Open(pty.Path(), mode)
	if err != nil {
		pty.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cjt188sim.NewLine(mode, meters...).Serve(ctx, pty) }()
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

func foundStrings(fs []Found) []string {
	var s []string
	for _, f := range fs {
		s = append(s, fmt.Sprintf("%02X %s", f.Type, f.Address))
	}
	slices.Sort(s)
	return s
}

// Two water meters and a gas meter collide on the wildcard; a silent one
// is not found. The simulated line emulates no wire time, so Mode is left
// unset: each probe listens for ReplyDelay only.
func TestSearchMultidropLine(t *testing.T) {
	silent := cjt188sim.NewMeter("20261207000104", cjt188sim.ColdWater)
	silent.SetFault(cjt188sim.Silent)
	p := simLine(t,
		cjt188sim.NewMeter("20261207000101", cjt188sim.ColdWater),
		cjt188sim.NewMeter("20261207000102", cjt188sim.HotWater),
		cjt188sim.NewMeter("20261207000203", cjt188sim.ColdWater),
		silent)
	got, err := Search(context.Background(), p, SearchOptions{ReplyDelay: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10 20261207000101", "10 20261207000203", "11 20261207000102"}
	if !slices.Equal(foundStrings(got), want) {
		t.Errorf("found %v, want %v", foundStrings(got), want)
	}
}

// One meter answers the wildcard read address: the public capture in
// testdata (python_cjt188's request with 3 FE, and its reply).
func TestSearchOneMeterRealFrames(t *testing.T) {
	req := testkit.Unhex(t, "FE FE FE 68 AA AA AA AA AA AA AA AA 03 03 81 0A 00 49 16")
	reply := testkit.Unhex(t, "FE FE FE 68 10 12 00 00 00 00 00 00 83 03 81 0A 00 9B 16")
	// The answer is confirmed at the meter's own address.
	p := serialsim.NewScript(t, serialsim.Step{Expect: req, Reply: reply},
		serialsim.Step{Expect: testkit.Unhex(t, "FE FE FE 68 AA 12 00 00 00 00 00 00 03 03 81 0A 01 B6 16"),
			Reply: testkit.Unhex(t, "FE FE FE 68 10 12 00 00 00 00 00 00 83 03 81 0A 01 9C 16")})
	got, err := Search(context.Background(), p, SearchOptions{Preamble: 3, ReplyDelay: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10 00000000000012"}; !slices.Equal(foundStrings(got), want) {
		t.Errorf("found %v, want %v", foundStrings(got), want)
	}
}

func TestClassifySearch(t *testing.T) {
	wild, _ := ParseAddress(WildcardAddress)
	one, _ := ParseAddress("20261207000101")
	req := SearchRequest(TypeAny, wild, 7, 0)
	reply := func(c byte, data ...byte) []byte {
		return Encode(Frame{Type: TypeColdWater, Addr: one, Control: c, Data: data})
	}
	cases := []struct {
		name   string
		frames [][]byte
		noise  int
		want   addrsearch.Outcome
	}{
		{"nothing", nil, 0, addrsearch.Silence},
		{"noise", nil, 5, addrsearch.Collision},
		{"one reply", [][]byte{reply(0x83, 0x81, 0x0A, 7)}, 0, addrsearch.Answer},
		{"DI low byte first", [][]byte{reply(0x83, 0x0A, 0x81, 7)}, 0, addrsearch.Answer},
		{"old SER", [][]byte{reply(0x83, 0x81, 0x0A, 6)}, 0, addrsearch.Collision},
		{"abnormal", [][]byte{reply(0xC3, 0x81, 0x0A, 7, 0)}, 0, addrsearch.Collision},
		{"other DI", [][]byte{reply(0x83, 0x90, 0x1F, 7)}, 0, addrsearch.Collision},
		{"two replies", [][]byte{reply(0x83, 0x81, 0x0A, 7), reply(0x83, 0x81, 0x0A, 7)}, 0, addrsearch.Collision},
		{"no SER", [][]byte{reply(0x83, 0x81, 0x0A)}, 0, addrsearch.Collision},
	}
	if got, _ := ClassifySearch(SearchRequest(TypeGas, wild, 7, 0), [][]byte{reply(0x83, 0x81, 0x0A, 7)}, 0); got != addrsearch.Collision {
		t.Errorf("a water meter's reply to the gas type: %v, want collision", got)
	}
	for _, c := range cases {
		got, b := ClassifySearch(req, c.frames, c.noise)
		if got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
		if got == addrsearch.Answer && (b[0] != TypeColdWater || Address(b[1:]) != one) {
			t.Errorf("%s: % X, want type 10 and %s", c.name, b, one)
		}
	}
}

// FuzzSearchReply feeds arbitrary line bytes to the search's listener and
// classifier: no panic, and an Answer always names an address the
// request's pattern matches.
func FuzzSearchReply(f *testing.F) {
	f.Add(testkit.Unhex(f, "FE FE FE 68 10 12 00 00 00 00 00 00 83 03 81 0A 00 9B 16"))
	f.Add([]byte{0x68, 0x10, 0x68})
	wild, _ := ParseAddress(WildcardAddress)
	short, _ := ParseAddress("AAAAAAAAAAAA12")
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, req := range []Frame{SearchRequest(TypeAny, wild, 0, 0), SearchRequest(TypeGas, short, 0, 0)} {
			h := addrsearch.Parse(b, Split, preambleByte, isReply)
			out, id := ClassifySearch(req, h.Frames, h.Noise)
			if out == addrsearch.Answer && (len(id) != 8 || !req.Addr.Matches(Address(id[1:]))) {
				t.Fatalf("% X: answer % X to pattern %s", b, id, req.Addr)
			}
			if len(b) == 0 && out != addrsearch.Silence {
				t.Fatalf("nothing heard is %v", out)
			}
		}
	})
}

// A meter that ignores the wildcard type is found when its own type is
// asked: after silence to T = AA, Search asks each type in turn and stops
// after the type that answered.
func TestSearchAsksEachTypeAfterSilence(t *testing.T) {
	wild, _ := ParseAddress(WildcardAddress)
	addr, _ := ParseAddress("20261207000101")
	req := func(typ byte, a Address, ser byte) []byte { return Encode(SearchRequest(typ, a, ser, DefaultPreamble)) }
	rep := func(ser byte) []byte {
		return Encode(Frame{Type: TypeColdWater, Addr: addr, Control: 0x83, Data: []byte{0x81, 0x0A, ser}})
	}
	p := serialsim.NewScript(t,
		serialsim.Step{Expect: req(TypeAny, wild, 0)},
		serialsim.Step{Expect: req(TypeColdWater, wild, 1), Reply: rep(1)},
		serialsim.Step{Expect: req(TypeColdWater, addr, 2), Reply: rep(2)})
	var lastDone, lastFound int
	got, err := Search(context.Background(), p, SearchOptions{ReplyDelay: 20 * time.Millisecond,
		Progress: func(done, _, found int) { lastDone, lastFound = done, found }})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10 20261207000101"}; !slices.Equal(foundStrings(got), want) {
		t.Errorf("found %v, want %v", foundStrings(got), want)
	}
	if lastDone != 3 || lastFound != 1 {
		t.Errorf("progress ended at %d probes, %d found; want 3, 1", lastDone, lastFound)
	}
}
