package rs485

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"
)

func TestFaultString(t *testing.T) {
	for f, want := range map[Fault]string{
		None: "none", Silent: "silent", BadChecksum: "bad-checksum", NoiseBefore: "noise-before",
		WrongAddress: "wrong-address", CutOff: "cut-off", Slow(250 * time.Millisecond): "slow(250ms)",
		Garbage(0.25): "garbage(0.25)", Garbage(7): "garbage(1)", FirstCustom: "Fault(16)",
	} {
		if got := f.String(); got != want {
			t.Errorf("%d: String() = %q, want %q", uint64(f), got, want)
		}
	}
	if d := Slow(-time.Second).Delay(); d != 0 {
		t.Errorf("Slow(-1s) delays %v", d)
	}
}

func TestFaultApply(t *testing.T) {
	const preamble = 2
	wire := append([]byte{0xFE, 0xFE}, toyFrame(0x01, 0x02, 0x03, 0x04)...) // addr = first data byte
	encode := func(wrongAddress bool) []byte {
		data := []byte{0x01, 0x02, 0x03, 0x04}
		if wrongAddress {
			data[0] ^= 0x01
		}
		return append([]byte{0xFE, 0xFE}, toyFrame(data...)...)
	}
	apply := func(f Fault) ([]byte, time.Duration, bool) {
		return f.Apply(encode, preamble, 0x68, rand.New(rand.NewPCG(1, 2)))
	}
	if b, d, faulted := apply(None); !bytes.Equal(b, wire) || d != 0 || faulted {
		t.Errorf("None: % X %v %v", b, d, faulted)
	}
	if b, _, faulted := apply(FirstCustom); !bytes.Equal(b, wire) || faulted {
		t.Errorf("a custom kind changed the reply: % X %v", b, faulted)
	}
	if b, _, faulted := apply(Silent); b != nil || !faulted {
		t.Errorf("Silent: % X %v", b, faulted)
	}
	if b, _, _ := apply(BadChecksum); len(b) != len(wire) || b[len(b)-2] != wire[len(b)-2]+1 {
		t.Errorf("BadChecksum: % X", b)
	}
	if b, _, _ := apply(WrongAddress); !bytes.Equal(b, encode(true)) {
		t.Errorf("WrongAddress: % X", b)
	}
	if b, _, _ := apply(CutOff); !bytes.Equal(b, wire[:preamble+(len(wire)-preamble)/2]) {
		t.Errorf("CutOff: % X", b)
	}
	if b, d, faulted := apply(Slow(time.Second)); !bytes.Equal(b, wire) || d != time.Second || !faulted {
		t.Errorf("Slow: % X %v %v", b, d, faulted)
	}
	if b, _, _ := apply(Garbage(0)); !bytes.Equal(b, wire) {
		t.Errorf("Garbage(0) garbled: % X", b)
	}
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 0))
		b, _, faulted := NoiseBefore.Apply(encode, preamble, 0x68, rng)
		n := len(b) - len(wire)
		if !faulted || n < 1 || n > 8 || !bytes.Equal(b[n:], wire) || bytes.IndexByte(b[:n], 0x68) >= 0 {
			t.Fatalf("NoiseBefore: % X", b)
		}
		b, _, faulted = Garbage(1).Apply(encode, preamble, 0x68, rng)
		if !faulted || len(b) != len(wire) || bytes.Equal(b, wire) || !bytes.Equal(b[:preamble], wire[:preamble]) {
			t.Fatalf("Garbage(1): % X", b)
		}
	}
}
