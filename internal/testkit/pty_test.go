package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/townlink/townlink/hardware"
)

// echo writes back every byte it reads, upper-cased.
func echo(ctx context.Context, p hardware.Port) error {
	if err := p.SetReadTimeout(20 * time.Millisecond); err != nil {
		return err
	}
	buf := make([]byte, 64)
	for ctx.Err() == nil {
		n, err := p.Read(buf)
		if _, werr := p.Write(bytes.ToUpper(buf[:n])); werr != nil {
			return werr
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
	}
	return nil
}

func TestServedPTYRepliesAndGoesQuiet(t *testing.T) {
	gw := OpenServedPTY(t, hardware.Mode{Baud: 9600}, echo)
	if _, err := gw.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if got := ReadReply(t, gw, 200*time.Millisecond); string(got) != "PING" {
		t.Fatalf("reply %q, want PING", got)
	}
	if got := ReadQuiet(t, gw, 100*time.Millisecond); len(got) != 0 {
		t.Fatalf("after the reply: %q", got)
	}
}

func TestUnhex(t *testing.T) {
	if got := Unhex(t, "68 aa 16"); !bytes.Equal(got, []byte{0x68, 0xAA, 0x16}) {
		t.Fatalf("Unhex = % X", got)
	}
	if got := Unhex(t, "0102"); !bytes.Equal(got, []byte{1, 2}) {
		t.Fatalf("Unhex = % X", got)
	}
}

func TestReadJSONKeepsNumbersExact(t *testing.T) {
	path := t.TempDir() + "/v.json"
	if err := os.WriteFile(path, []byte(`{"Frames": [{"value": 12345678901234567890.5}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var v struct{ Frames []map[string]any }
	ReadJSON(t, path, &v)
	if len(v.Frames) != 1 || v.Frames[0]["value"] != json.Number("12345678901234567890.5") {
		t.Fatalf("decoded %#v", v)
	}
}
