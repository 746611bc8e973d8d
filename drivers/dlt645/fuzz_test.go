package dlt645

import (
	"bytes"
	"errors"
	"testing"

	"github.com/townlink/townlink/internal/testkit"
)

func fuzzSeeds(f *testing.F) {
	for _, g := range loadGolden(f) {
		f.Add(testkit.Unhex(f, g.Hex))
	}
	f.Add([]byte{})
	f.Add([]byte{0x68})
	f.Add([]byte{0xFE, 0xFE, 0x68, 0x68, 0x68, 0x68, 0x68, 0x68, 0x68, 0x68, 0x91, 0xFF})
	f.Add([]byte{0x00, 0x68, 0x55, 0x68, 0x14, 0x01, 0x00, 0x31, 0x82, 0x21, 0x68, 0x91, 0x00, 0x2E, 0x16})
}

// FuzzDecode: Decode never panics, fails only with a named error, and
// what it accepts re-encodes to the same bytes.
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
		_ = fr.Err()
		if fr.IsAbnormal() && fr.IsReply() {
			var ab *AbnormalError
			if !errors.As(fr.Err(), &ab) || ab.Error() == "" {
				t.Fatalf("abnormal frame without AbnormalError")
			}
		}
		// Value decoders must not panic on any DATA either.
		for _, v := range []Version{V2007, V1997} {
			for _, it := range Items(v) {
				_, _ = it.Values(fr.Data)
			}
		}
		_, _, _, _, _ = DecodeDate(fr.Data)
		_, _, _, _, _ = DecodeTime(fr.Data)
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
				break // needs more bytes
			}
			buf = buf[skip:]
		}
	})
}
