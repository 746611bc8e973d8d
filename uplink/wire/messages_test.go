package wire

import (
	"errors"
	"strings"
	"testing"
)

func TestTopic(t *testing.T) {
	tp := Topic("320583", "320583104", "tl-01", StreamTelemetry)
	if tp != "townlink/v1/320583/320583104/tl-01/telemetry" {
		t.Fatal(tp)
	}
	c, tw, gw, s, err := ParseTopic(tp)
	if err != nil || c != "320583" || tw != "320583104" || gw != "tl-01" || s != StreamTelemetry {
		t.Fatalf("ParseTopic: %q %q %q %q %v", c, tw, gw, s, err)
	}
	for _, s := range []string{StreamTelemetry, StreamEvents, StreamAlarms, StreamEvidence, StreamStatus, StreamCmd, StreamCmdResult, StreamAck} {
		if _, _, _, got, err := ParseTopic(Topic("320583", "320583104", "g", s)); err != nil || got != s {
			t.Errorf("stream %s: %v", s, err)
		}
	}
	for _, bad := range []string{
		"", "townlink/v1/320583/320583104/tl-01", "townlink/v2/320583/320583104/tl-01/telemetry",
		"townlink/v1/32058/320583104/tl-01/telemetry", "townlink/v1/32058a/320583104/tl-01/telemetry",
		"townlink/v1/320583/320584104/tl-01/telemetry", "townlink/v1/320583/3205831040/tl-01/telemetry",
		"townlink/v1/320583/320583104/TL-01/telemetry", "townlink/v1/320583/320583104/-tl/telemetry",
		"townlink/v1/320583/320583104/tl-01/+", "townlink/v1/320583/320583104/tl-01/logs",
		"townlink/v1/320583/320583104/tl-01/telemetry/x", "/townlink/v1/320583/320583104/tl-01/telemetry",
	} {
		if _, _, _, _, err := ParseTopic(bad); !errors.Is(err, ErrTopic) {
			t.Errorf("ParseTopic(%q) = %v", bad, err)
		}
	}
	for id, ok := range map[string]bool{"a": true, "0": true, "tl-320583104-01": true, strings.Repeat("a", 63): true,
		"": false, "-a": false, "A": false, "a_b": false, "a.b": false, strings.Repeat("a", 64): false, "a b": false, "网关": false} {
		if err := ValidateGatewayID(id); (err == nil) != ok {
			t.Errorf("ValidateGatewayID(%q) = %v", id, err)
		}
	}
	if ValidateCounty("320583") != nil || ValidateCounty("3205830") == nil || ValidateTownship("320583", "320583104") != nil ||
		ValidateTownship("320583", "320500104") == nil || ValidateTownship("32058x", "32058x104") == nil {
		t.Fatal("county/township validation")
	}
}

func TestStatusRejects(t *testing.T) {
	base := func() obj {
		return obj{"v": 1, "gw": "gw-1", "state": "online", "ts": 1, "version": "0.1", "boot": "b1",
			"backlog": obj{"telemetry": 5}, "oldest_unsent_ms": 10, "dropped": obj{}, "devices": obj{"m1": "ok"}, "clock": "synced"}
	}
	if _, err := DecodeStatus(enc(t, base())); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in    obj
		want  error
		needs string
	}{
		{with(base(), "v", 2), ErrVersion, "v: got 2"},
		{with(base(), "state", "sleeping"), ErrSchema, "state"},
		{with(base(), "clock", "gps"), ErrSchema, "clock"},
		{with(base(), "devices", obj{"m1": "fine"}), ErrSchema, `devices["m1"]`},
		{with(base(), "devices", obj{"m1": 1}), ErrSchema, `devices["m1"]: want text`},
		{with(base(), "backlog", obj{"status": 1}), ErrSchema, `backlog["status"]`},
		{with(base(), "backlog", obj{"telemetry": -1}), ErrSchema, `backlog["telemetry"]: want unsigned`},
		{with(base(), "dropped", nil), ErrSchema, "dropped: missing"},
		{with(base(), "extra", 1), ErrSchema, `"extra": unknown key`},
		{with(base(), "oldest_unsent_ms", 1.5), ErrSchema, "oldest_unsent_ms: want unsigned"},
		{with(base(), "boot", ""), ErrSchema, "boot: must not be empty"},
		{with(base(), "gw", "GW"), ErrSchema, "gw"},
	} {
		_, err := DecodeStatus(enc(t, c.in))
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.needs) {
			t.Errorf("%v: error %v, want %v mentioning %q", c.in, err, c.want, c.needs)
		}
	}
	s := goldenStatus()
	s.State = StateOffline // the last will
	p, err := EncodeStatus(s)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeStatus(p); err != nil || got.State != StateOffline {
		t.Fatalf("%+v %v", got, err)
	}
	s.Devices = nil // nil maps go out as {}
	if _, err := EncodeStatus(s); err != nil {
		t.Fatal(err)
	}
}

func TestCommandMessages(t *testing.T) {
	// An unknown op decodes, so the gateway can refuse it with the id.
	c, err := DecodeCommand(enc(t, obj{"id": "c1", "op": "reboot"}))
	if err != nil || c.Op != "reboot" || KnownOp(c.Op) || !KnownOp(OpTimeSync) {
		t.Fatalf("%+v %v", c, err)
	}
	for _, c := range []struct {
		in    []byte
		dec   func([]byte) error
		needs string
	}{
		{enc(t, obj{"op": "ping"}), decCmd, "id: missing"},
		{enc(t, obj{"id": "", "op": "ping"}), decCmd, "id: must not be empty"},
		{enc(t, obj{"id": "1", "op": "ping", "dev": ""}), decCmd, "dev: must not be empty"},
		{enc(t, obj{"id": "1", "op": "ping", "args": obj{"x": nullT{}}}), decCmd, `args["x"]: null not allowed`},
		{enc(t, obj{"id": "1", "op": "ping", "args": []any{}}), decCmd, "args: want map"},
		{enc(t, obj{"id": "1", "op": "ping", "timeout": 5}), decCmd, `"timeout": unknown key`},
		{enc(t, obj{"id": "1", "ok": false}), decRes, "err: required when ok is false"},
		{enc(t, obj{"id": "1", "ok": true, "err": "x"}), decRes, "err: not allowed when ok is true"},
		{enc(t, obj{"id": "1", "ok": 1}), decRes, "ok: want bool"},
		{enc(t, obj{"id": "1", "ok": false, "err": ""}), decRes, "err: must not be empty"},
		{enc(t, obj{"stream": "status", "upto": 1}), decAck, "stream"},
		{enc(t, obj{"stream": "telemetry", "upto": 0}), decAck, "upto: 0"},
		{enc(t, obj{"stream": "telemetry"}), decAck, "upto: missing"},
	} {
		err := c.dec(c.in)
		if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), c.needs) {
			t.Errorf("%x: error %v, want ErrSchema mentioning %q", c.in, err, c.needs)
		}
	}
	r := &CommandResult{ID: "c2", OK: false, Err: "unknown op \"reboot\""}
	p, err := EncodeCommandResult(r)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeCommandResult(p); err != nil || !resultEqual(got, r) {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := EncodeCommandResult(&CommandResult{ID: "c3"}); !errors.Is(err, ErrSchema) {
		t.Fatalf("ok false without err encoded: %v", err)
	}
	if _, err := EncodeAck(&PlatformAck{Stream: StreamEvidence}); !errors.Is(err, ErrSchema) {
		t.Fatalf("upto 0 encoded: %v", err)
	}
}

func decCmd(p []byte) error { _, err := DecodeCommand(p); return err }
func decRes(p []byte) error { _, err := DecodeCommandResult(p); return err }
func decAck(p []byte) error { _, err := DecodeAck(p); return err }

// TestEncodeValidates: Encode refuses what Decode would refuse.
func TestEncodeValidates(t *testing.T) {
	g := newGen(13)
	ok := func() *Batch { return g.batch("gw-1", StreamTelemetry, 1, 3) }
	for _, c := range []struct {
		name string
		mut  func(b *Batch)
		want error
	}{
		{"v 0", func(b *Batch) { b.V = 0 }, ErrVersion},
		{"gw", func(b *Batch) { b.GW = "" }, ErrSchema},
		{"stream", func(b *Batch) { b.Stream = StreamCmd }, ErrSchema},
		{"no recs", func(b *Batch) { b.Recs = nil }, ErrSchema},
		{"seq 0", func(b *Batch) { b.Recs[0].Seq = 0 }, ErrSchema},
		{"order", func(b *Batch) { b.Recs[1].Seq = b.Recs[0].Seq }, ErrSchema},
		{"kind", func(b *Batch) { b.Recs[2].Kind = "" }, ErrSchema},
		{"tsrc", func(b *Batch) { b.Recs[2].TSrc = "ntp" }, ErrSchema},
		{"dev", func(b *Batch) { b.Recs[2].Dev = "" }, ErrSchema},
		{"prev on telemetry", func(b *Batch) { b.Recs[0].Prev = make([]byte, 32) }, ErrSchema},
		{"evidence without hash", func(b *Batch) { b.Stream = StreamEvidence }, ErrSchema},
		{"nan", func(b *Batch) { b.Recs[0].Vals["x"] = Float(0 / func() float64 { return 0 }()) }, ErrSchema},
		{"gap from other gw", func(b *Batch) { gr := GapRecord("gw-2", 1, 2, "q", 0); gr.Seq = 99; b.Recs = append(b.Recs, gr) }, ErrSchema},
	} {
		b := ok()
		c.mut(b)
		if _, err := Encode(b); !errors.Is(err, c.want) {
			t.Errorf("%s: Encode error %v, want %v", c.name, err, c.want)
		}
	}
	big := &Batch{V: 1, GW: "g", Stream: StreamTelemetry, Recs: make([]Record, MaxRecords+1)}
	if _, err := Encode(big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too many records: %v", err)
	}
}
