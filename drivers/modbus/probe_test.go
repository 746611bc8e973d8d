package modbus

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/townlink/townlink/firmware-sim/modbussim"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serial"
	"github.com/townlink/townlink/hardware/serialsim"
)

func simBus(t *testing.T, units ...*modbussim.Unit) hardware.Port {
	t.Helper()
	mode := hardware.Mode{Baud: 9600}
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
	go func() { done <- modbussim.NewBus(mode, units...).Serve(ctx, pty) }()
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

// Units 1..247 are probed: a unit with holding 0 answers normally, one
// without it answers exception 02 (still there), a silent one is not
// found, and a slow one whose reply comes while later units are asked is
// still credited. The simulator emulates no wire time, so Mode is unset.
func TestScanFindsUnits(t *testing.T) {
	u1 := modbussim.NewUnit(1)
	u1.SetHolding(0, 42)
	u7 := modbussim.NewUnit(7)
	u7.SetInput(0, 1) // no holding 0: exception 02
	u9 := modbussim.NewUnit(9)
	u9.SetHolding(0, 1)
	u9.SetFault(modbussim.Silent())
	u50 := modbussim.NewUnit(50)
	u50.SetHolding(0, 5)
	u50.SetFault(modbussim.Slow(150 * time.Millisecond))
	u247 := modbussim.NewUnit(247)
	u247.SetHolding(0, 247)
	p := simBus(t, u1, u7, u9, u50, u247)
	var last, total int
	got, err := Scan(context.Background(), p, ProbeOptions{ReplyDelay: 30 * time.Millisecond,
		Progress: func(done, n, _ int) { last, total = done, n }})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b Present) int { return int(a.Unit) - int(b.Unit) })
	want := []Present{{Unit: 1}, {Unit: 7, Exception: ExIllegalDataAddress}, {Unit: 50}, {Unit: 247}}
	if !slices.Equal(got, want) {
		t.Errorf("found %+v, want %+v", got, want)
	}
	if last != 247 || total != 247 {
		t.Errorf("progress ended at %d/%d, want 247/247", last, total)
	}
}

func TestScanStopsOnCancel(t *testing.T) {
	u1 := modbussim.NewUnit(1)
	u1.SetHolding(0, 1)
	u200 := modbussim.NewUnit(200)
	u200.SetHolding(0, 1)
	p := simBus(t, u1, u200)
	ctx, cancel := context.WithCancel(context.Background())
	got, err := Scan(ctx, p, ProbeOptions{ReplyDelay: 20 * time.Millisecond, Progress: func(done, _, _ int) {
		if done == 10 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if want := []Present{{Unit: 1}}; !slices.Equal(got, want) {
		t.Errorf("found %+v, want %+v", got, want)
	}
}

func TestClassifyProbe(t *testing.T) {
	cases := []struct {
		hex  string
		want Present
		ok   bool
	}{
		{"01 03 02 00 2A", Present{Unit: 1}, true},
		{"07 83 02", Present{Unit: 7, Exception: 2}, true},
		{"00 03 02 00 2A", Present{}, false},       // broadcast unit
		{"F8 03 02 00 2A", Present{}, false},       // unit 248
		{"01 04 02 00 2A", Present{}, false},       // another function
		{"01 03 04 00 2A 00 00", Present{}, false}, // two registers
		{"01 83", Present{}, false},
	}
	for _, c := range cases {
		got, err := ClassifyProbe(AppendCRC(unhex(t, c.hex)))
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("% s: %+v, %v; want %+v ok=%v", c.hex, got, err, c.want, c.ok)
		}
	}
}

func TestProbeRequestIsReadOneHoldingRegister(t *testing.T) {
	// The spec's example request shape: unit, 03, address 0000, quantity 0001, CRC.
	if got, want := ProbeRequest(1), unhex(t, "01 03 00 00 00 01 84 0A"); !slices.Equal(got, want) {
		t.Errorf("ProbeRequest(1) = % X, want % X", got, want)
	}
}

func FuzzClassifyProbe(f *testing.F) {
	f.Add(AppendCRC([]byte{1, 3, 2, 0, 42}))
	f.Add(AppendCRC([]byte{7, 0x83, 2}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ClassifyProbe(b)
		if err != nil {
			return
		}
		if got.Unit == 0 || got.Unit > 247 || got.Unit != b[0] {
			t.Fatalf("% X: unit %d accepted", b, got.Unit)
		}
	})
}
