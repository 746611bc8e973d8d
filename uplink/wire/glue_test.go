package wire_test

import (
	"testing"
	"time"

	"github.com/townlink/townlink/uplink/wire"
)

func TestFramerAndGapEncoderMakeWhatDecodes(t *testing.T) {
	gap := wire.GapEncoder("gw-1", func() time.Time { return time.UnixMilli(1_760_000_000_000) }, func() bool { return false })
	b, err := gap(3, 7, "quota")
	if err != nil {
		t.Fatal(err)
	}
	sealed, _, err := wire.Seal(wire.StreamTelemetry, b, 9, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := wire.Framer("gw-1", wire.StreamTelemetry)([][]byte{sealed})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := wire.DecodeTopic(wire.Topic("320583", "320583104", "gw-1", wire.StreamTelemetry), msg)
	if err != nil {
		t.Fatal(err)
	}
	r := batch.Recs[0]
	from, to, ok := wire.GapRange(&r)
	if !ok || from != 3 || to != 7 || r.Seq != 9 || r.TSrc != wire.TSrcUnsynced || r.TS != 1_760_000_000_000 {
		t.Errorf("record %+v", r)
	}
}
