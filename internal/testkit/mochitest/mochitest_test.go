package mochitest

import (
	"encoding/json"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/fxamacker/cbor/v2"
)

func TestBrokerRecordsWhatIsPublished(t *testing.T) {
	b := Start(t)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(b.Addr).SetClientID("dev-1"))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	if tok := c.Publish("field/dev-1/x", 1, false, `{"seq":7}`); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case <-b.Got():
	case <-time.After(10 * time.Second):
		t.Fatal("nothing recorded")
	}
	got := b.Messages()
	if len(got) != 1 || got[0].Client != "dev-1" || got[0].Topic != "field/dev-1/x" || string(got[0].Payload) != `{"seq":7}` {
		t.Fatalf("recorded %+v", got)
	}
	if seq := Envelope(t, got[0].Payload)["seq"]; seq != json.Number("7") {
		t.Fatalf("JSON seq %#v", seq)
	}
	cb, err := cbor.Marshal(map[string]any{"seq": 8})
	if err != nil {
		t.Fatal(err)
	}
	if seq := Envelope(t, cb)["seq"]; seq != uint64(8) {
		t.Fatalf("CBOR seq %#v", seq)
	}
}
