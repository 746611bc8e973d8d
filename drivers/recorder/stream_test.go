package recorder_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/recorder"
)

// Stream agrees with Decode on every valid golden message.
func TestStreamAgreesWithDecode(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.json")
	if len(files) < 5 {
		t.Fatalf("only %d golden files", len(files))
	}
	checked := 0
	for _, event := range recorder.Events() {
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			r, _ := recorder.New(recorder.Config{Device: "zfy-001"})
			rs, err := r.Decode(event, b)
			if err != nil || len(rs) != 1 {
				continue
			}
			want := recorder.Stream(event)
			if event == "device.status" && rs[0].Class == drivers.Event {
				want = drivers.Event // the last will is an event
			}
			if rs[0].Class != want {
				t.Errorf("%s %s: decoded on %v, Stream says %v", event, filepath.Base(f), rs[0].Class, recorder.Stream(event))
			}
			checked++
		}
	}
	if checked < 5 {
		t.Fatalf("only %d messages decoded", checked)
	}
	if recorder.Stream("no.such.event") != drivers.Event {
		t.Error("an unknown event is not kept on events")
	}
}
