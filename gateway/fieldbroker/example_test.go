package fieldbroker_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/townlink/townlink/gateway/fieldbroker"
)

func Example() {
	queue := func(ctx context.Context, id, event string, msg map[string]any) error { return nil } // the durable queue
	b, err := fieldbroker.Start(fieldbroker.Options{
		Listen:     "127.0.0.1:0",
		Devices:    []fieldbroker.Device{{ID: "cam-01", Username: "cam-01", Password: []byte("from password_file")}},
		MaxPayload: 64 << 10,
		Handle: func(ctx context.Context, id, event string, payload []byte) error {
			if event == fieldbroker.EventOffline {
				return queue(ctx, id, event, nil)
			}
			var msg map[string]any
			if err := json.Unmarshal(payload, &msg); err != nil {
				// Never storable: refused, never acknowledged (MQTT 5: PUBACK
				// 0x99; 3.1.1: connection closed), counted as malformed.
				return fmt.Errorf("%s %s: %w: %w", id, event, fieldbroker.ErrRejected, err)
			}
			// nil once durably queued (PUBACK goes out); an error wrapping
			// ErrRefused (store full) or any other error is not acknowledged
			// either: the device keeps the message and resends it, throttled.
			return queue(ctx, id, event, msg)
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	fmt.Println(b.Online(), b.Stats().Connects)
	// Output: map[cam-01:false] 0
}
