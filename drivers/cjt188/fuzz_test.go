package cjt188

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/townlink/townlink/internal/testkit"
)

func fuzzSeeds(f *testing.F) {
	for _, g := range loadGolden(f) {
		f.Add(testkit.Unhex(f, g.Hex))
	}
	f.Add([]byte{})
	f.Add([]byte{0x68})
	f.Add([]byte{0xFE, 0x68, 0x68, 0x68, 0x68, 0x68, 0x68, 0x68, 0x68, 0x68, 0x81, 0xFF})
}

// FuzzDecode: Decode never panics, fails only with a named error, and
// what it accepts re-encodes to the same bytes; the 901F decoder never
// panics on any DATA.
func FuzzDecode(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b)
		if err != nil {
			for _, want := range []error{ErrShort, ErrStart, ErrLength, ErrChecksum, ErrEnd} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("Decode(% X): unnamed error %v", b, err)
		}
		if enc := Encode(fr); !bytes.Equal(enc, b) {
			t.Fatalf("Encode(Decode(% X)) = % X", b, enc)
		}
		if fr.IsReply() && fr.IsAbnormal() && !errors.Is(fr.Err(), ErrAbnormal) {
			t.Fatal("abnormal frame without AbnormalError")
		}
		d, err := ParseMeterData(fr.Data)
		if err != nil {
			if !errors.Is(err, ErrValue) {
				t.Fatalf("ParseMeterData: unnamed error %v", err)
			}
			return
		}
		vals, err := d.Values(time.UTC, time.Unix(0, 0))
		if err != nil && !errors.Is(err, ErrValue) && !errors.Is(err, ErrUnit) {
			t.Fatalf("Values: unnamed error %v", err)
		}
		for _, p := range []string{PointValve, PointBatteryLow, PointStatusRaw} {
			if _, ok := vals[p]; !ok {
				t.Fatalf("%s missing", p)
			}
		}
	})
}

// FuzzSplit: Split never panics, never errors, makes progress, and every
// frame it returns decodes.
func FuzzSplit(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		buf := b
		for len(buf) > 0 {
			skip, n, err := Split(buf)
			if err != nil {
				t.Fatalf("Split error %v", err)
			}
			if skip < 0 || n < 0 || skip > len(buf) || n > len(buf) || (skip > 0 && n > 0) {
				t.Fatalf("Split(% X) = %d, %d", buf, skip, n)
			}
			if n > 0 {
				if _, err := Decode(buf[:n]); err != nil {
					t.Fatalf("Split found % X, Decode: %v", buf[:n], err)
				}
				buf = buf[n:]
				continue
			}
			if skip == 0 {
				break
			}
			buf = buf[skip:]
		}
	})
}
