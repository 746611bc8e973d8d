package recorder

import (
	"bytes"
	"errors"
	"math/big"
	"sync"
	"testing"

	"github.com/townlink/townlink/drivers"
)

func bigInt(v int64) *big.Int { return big.NewInt(v) }

func TestConfig(t *testing.T) {
	for _, c := range []Config{{}, {Device: "zfy-1", MaxPayload: -1}} {
		if _, err := New(c); !errors.Is(err, drivers.ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", c, err)
		}
	}
	if _, err := New(Config{Device: "zfy-1"}); err != nil {
		t.Fatal(err)
	}
}

func TestTooLarge(t *testing.T) {
	r, err := New(Config{Device: "zfy-001", MaxPayload: 64})
	if err != nil {
		t.Fatal(err)
	}
	ok := []byte(`{"battery_pct":5,"storage_free_mb":1,"recording":false}`)
	if _, err := r.Decode("device.status", ok); err != nil {
		t.Fatalf("%d bytes: %v", len(ok), err)
	}
	big := append(ok[:len(ok):len(ok)], bytes.Repeat([]byte(" "), 65-len(ok))...)
	_, err = r.Decode("device.status", big)
	if !errors.Is(err, ErrTooLarge) || err.Error() != "recorder: zfy-001 device.status: payload of 65 bytes exceeds 64" {
		t.Fatalf("got %v", err)
	}
	// The default limit is 64 KiB.
	d := newTest(t)
	huge := []byte(`{"cmd_id":"c","result":"ok","detail":"` + string(bytes.Repeat([]byte("x"), 64<<10)) + `"}`)
	if _, err := d.Decode("command.ack", huge); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
}

func TestUnknownEvent(t *testing.T) {
	r := newTest(t)
	for _, ev := range []string{"", "device.reboot", "Device.Status", "device.status/x"} {
		_, err := r.Decode(ev, []byte(`{"battery_pct":5,"storage_free_mb":1,"recording":false}`))
		if !errors.Is(err, ErrUnknownEvent) {
			t.Errorf("%q: %v", ev, err)
		}
	}
}

// A coordinate keeps every digit of its literal, beyond what a float64
// could hold.
func TestCoordinatesExact(t *testing.T) {
	r := newTest(t)
	got, err := r.Decode("device.position", []byte(`{"lat":31.123456789012345,"lon":-0.000000001,"datum":"WGS84"}`))
	if err != nil {
		t.Fatal(err)
	}
	if s := got[0].Values["lat"].String(); s != "31.123456789012345" {
		t.Errorf("lat = %s", s)
	}
	if m, e, ok := got[0].Values["lon"].Decimal(); !ok || m != -1 || e != -9 {
		t.Errorf("lon = %v", got[0].Values["lon"])
	}
}

// Decode keeps no state: concurrent use is safe (run with -race).
func TestConcurrentDecode(t *testing.T) {
	r := newTest(t)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				if _, err := r.Decode("device.position", []byte(`{"lat":31.3,"lon":120.6,"datum":"WGS84"}`)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
