package fieldbroker_test

import (
	"testing"

	"github.com/townlink/townlink/gateway/fieldbroker"
)

// mochi v2.7.9 panics on an MQTT 5 SUBSCRIBE whose last filter has no
// options byte (packets.SubscribeDecode indexes buf[offset] unchecked;
// mochi-mqtt/server#501), on the connection's goroutine, without recover:
// one logged-in device could end the whole gateway. The connection is
// closed instead, counted, and the device goes offline; others go on.
func TestDecoderPanicClosesOnlyThatConnection(t *testing.T) {
	rec := newRecorder()
	b := startBroker(t, fieldbroker.Options{Handle: rec.handle})
	good := connect(t, clientOpts(b.Addr(), "u-kiosk-1", "pw-kiosk-1", "kiosk-1", true))
	for i, body := range [][]byte{
		append([]byte{0, 1, 0}, str("field/cam-01/cmd")...),                                 // no options byte
		append(append(append([]byte{0, 2, 0}, str("field/cam-01/cmd")...), 1), str("x")...), // the second one without
	} {
		v := dialV5(t, b.Addr(), "u-cam-01", "pw-cam-01", "cam-01")
		v.send(0x82, body)
		if h, got, err := v.read(); err == nil && h>>4 != 14 {
			t.Fatalf("after a truncated SUBSCRIBE: packet %#x %x, want the connection closed", h, got)
		}
		// Before the next login, which would be a take-over, not offline.
		rec.waitFor(t, "cam-01 offline", func(_, acc []call) bool {
			return count(acc, func(c call) bool { return c.Device == "cam-01" && c.Event == fieldbroker.EventOffline }) == i+1
		})
	}
	publish(t, good, "field/kiosk-1/window.status", `{"state":"open"}`)
	if s := b.Stats(); s.DecodePanics != 2 || s.Devices["cam-01"].DecodePanics != 2 {
		t.Fatalf("stats %+v", s.Counters)
	}
	// The device may log in again.
	v := dialV5(t, b.Addr(), "u-cam-01", "pw-cam-01", "cam-01")
	if typ, r, err := v.publishQ(1, 1, "field/cam-01/alarm.sos", "sos"); err != nil || typ != 4 || r != 0 {
		t.Fatalf("after reconnecting: type %d reason %#x err %v", typ, r, err)
	}
}
