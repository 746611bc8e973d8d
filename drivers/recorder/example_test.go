package recorder_test

import (
	"fmt"

	"github.com/townlink/townlink/drivers/recorder"
)

func Example() {
	r, err := recorder.New(recorder.Config{Device: "zfy-001"})
	if err != nil {
		panic(err)
	}
	// The gateway calls Decode with the topic's last level.
	readings, err := r.Decode("device.position", []byte(`{"lat":31.2987654,"lon":120.5854321,"datum":"WGS84"}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(readings[0].Class, readings[0].Values["lat"], readings[0].Values["lon"], readings[0].Values["datum"])
	_, err = r.Decode("device.position", []byte(`{"lat":31.2987654,"lon":120.5854321,"datum":"WGS72"}`))
	fmt.Println(err)
	// Output:
	// telemetry 31.2987654 120.5854321 WGS84
	// recorder: zfy-001 device.position: datum = "WGS72": is not one of WGS84, GCJ02, BD09
}
