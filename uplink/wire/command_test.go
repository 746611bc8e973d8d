package wire

import (
	"errors"
	"strings"
	"testing"
)

func TestCommandExpiresRoundTrip(t *testing.T) {
	c := &Command{ID: "c1", Op: OpSet, Dev: "pump", Expires: 1767225600000}
	p, err := EncodeCommand(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeCommand(p)
	if err != nil || got.Expires != c.Expires {
		t.Fatalf("decode = %+v, %v", got, err)
	}
	if id, ok := CommandID(p); !ok || id != "c1" {
		t.Fatalf("CommandID = %q, %v", id, ok)
	}
}

func TestCommandExpiresRejected(t *testing.T) {
	for name, c := range map[string]*Command{
		"negative": {ID: "c1", Op: OpPing, Expires: -5},
	} {
		if _, err := EncodeCommand(c); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "expires") {
			t.Errorf("%s: encode err = %v", name, err)
		}
	}
	// A present expires of 0, or a non-integer, is refused on decode.
	for name, p := range map[string][]byte{
		"zero": {0xa3, 0x62, 'i', 'd', 0x61, 'x', 0x62, 'o', 'p', 0x64, 'p', 'i', 'n', 'g', 0x67, 'e', 'x', 'p', 'i', 'r', 'e', 's', 0x00},
		"text": {0xa3, 0x62, 'i', 'd', 0x61, 'x', 0x62, 'o', 'p', 0x64, 'p', 'i', 'n', 'g', 0x67, 'e', 'x', 'p', 'i', 'r', 'e', 's', 0x61, '1'},
	} {
		_, err := DecodeCommand(p)
		if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "expires") {
			t.Errorf("%s: decode err = %v", name, err)
		}
		// The id of a malformed command can still be read, to answer it.
		if id, ok := CommandID(p); !ok || id != "x" {
			t.Errorf("%s: CommandID = %q, %v", name, id, ok)
		}
	}
}

func TestCommandIDOfGarbage(t *testing.T) {
	for name, p := range map[string][]byte{
		"empty":    nil,
		"not map":  {0x01},
		"no id":    {0xa1, 0x62, 'o', 'p', 0x61, 'x'},
		"int id":   {0xa1, 0x62, 'i', 'd', 0x01},
		"empty id": {0xa1, 0x62, 'i', 'd', 0x60},
	} {
		if id, ok := CommandID(p); ok {
			t.Errorf("%s: CommandID = %q, true", name, id)
		}
	}
}

func TestResultStatus(t *testing.T) {
	ok := []*CommandResult{
		{ID: "a", OK: true},
		{ID: "a", OK: true, Status: ResultDone},
		{ID: "a", OK: false, Err: "late", Status: ResultExpired},
		{ID: "a", OK: false, Err: "bad", Status: ResultMalformed},
	}
	for _, r := range ok {
		p, err := EncodeCommandResult(r)
		if err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		got, err := DecodeCommandResult(p)
		if err != nil || !resultEqual(r, got) {
			t.Fatalf("%+v: round trip %+v, %v", r, got, err)
		}
	}
	bad := []*CommandResult{
		{ID: "a", OK: true, Status: ResultFailed},
		{ID: "a", OK: false, Err: "x", Status: ResultDone},
		{ID: "a", OK: false, Err: "x", Status: "lost"},
	}
	for _, r := range bad {
		if _, err := EncodeCommandResult(r); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "status") {
			t.Errorf("%+v: err = %v", r, err)
		}
	}
}
