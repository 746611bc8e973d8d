package fieldin_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers/kiosk"
	"github.com/townlink/townlink/drivers/recorder"
)

// Whatever a device publishes, Handle keeps it — decoded, or raw as a
// rejected record — and returns nil. An error is taken by the broker for a
// transient failure: the device is disconnected and resends the same
// message for ever, and everything it queued behind it waits.
func FuzzHandleKeepsEverything(f *testing.F) {
	devices := []struct {
		id, dir string
		events  []string
	}{
		{"zfy-001", "../../drivers/recorder/testdata", recorder.Events()},
		{"hall-kiosk-1", "../../drivers/kiosk/testdata", kiosk.Events()},
	}
	for i, d := range devices {
		b, err := os.ReadFile(filepath.Join(d.dir, "golden.json"))
		if err != nil {
			f.Fatal(err)
		}
		var golden []struct{ File, Event string }
		if err := json.Unmarshal(b, &golden); err != nil {
			f.Fatal(err)
		}
		for _, g := range golden {
			p, err := os.ReadFile(filepath.Join(d.dir, g.File))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(byte(i), g.Event, p)
		}
	}
	r := newRigFor(f, func() time.Time { return time.UnixMilli(1732950080000) }, devices[0].id, devices[1].id)
	f.Fuzz(func(t *testing.T, dev byte, event string, payload []byte) {
		d := devices[int(dev)%len(devices)]
		if err := r.in.Handle(context.Background(), d.id, event, payload); err != nil {
			t.Fatalf("%s %q %q: not kept: %v", d.id, event, payload, err)
		}
	})
}
