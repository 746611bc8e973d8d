package recorder

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/townlink/townlink/drivers"
)

func bigInt(v int64) *big.Int { return big.NewInt(v) }

func TestConfig(t *testing.T) {
	for _, c := range []Config{{}} {
		if _, err := New(c); !errors.Is(err, drivers.ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", c, err)
		}
	}
	if _, err := New(Config{Device: "zfy-1"}); err != nil {
		t.Fatal(err)
	}
}

// There is no size limit in the decoder: the field broker's max_payload
// (256 KiB by default) is the only one. A message of that size, valid but
// for its vendor extras (a GPS track), decodes.
func TestNoSizeLimit(t *testing.T) {
	r := newTest(t)
	var track strings.Builder
	for i := 0; track.Len() < 256<<10; i++ {
		fmt.Fprintf(&track, `{"t":%d,"lat":31.2987654,"lon":120.5854321},`, 1732950002000+i*1000)
	}
	for _, size := range []int{100 << 10, 256 << 10} {
		extra := track.String()[:size]
		extra = extra[:strings.LastIndex(extra, "},")+1]
		msg := []byte(`{"file_id":"F-1","size_bytes":10,"start_at":1732950002000,"end_at":1732950003000,"officer_id":"100234",` +
			`"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","track":[` + extra + `]}`)
		if len(msg) < size {
			t.Fatalf("message of %d bytes, want at least %d", len(msg), size)
		}
		got, err := r.Decode("evidence.file", msg)
		if err != nil {
			t.Fatalf("%d bytes: %v", len(msg), err)
		}
		if s, _ := got[0].Values["file_id"].AsText(); s != "F-1" {
			t.Errorf("%d bytes: %v", len(msg), got[0].Values)
		}
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
	// The error names the event, quoted and shortened: a topic level can be
	// long and hold anything.
	_, err := r.Decode(strings.Repeat("x", 1000)+"\n", nil)
	if want := `recorder: zfy-001 "` + strings.Repeat("x", 61) + `…": unknown event`; err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
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
