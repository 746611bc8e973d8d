package dlt645_test

import (
	"context"
	"fmt"
	"time"

	"github.com/townlink/townlink/firmware-sim/dlt645"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serialsim"
)

// Two meters on a PTY: the gateway opens pty.Path() at 2400 8E1.
func Example() {
	pty, err := serialsim.OpenPTY()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pty.Close()

	house := dlt645.NewMeter("003411001043", dlt645.V2007)
	house.SetPhases(1)
	house.Set("energy_kwh", "1234.56")
	house.Set("power_kw", "1.2000")
	house.Animate(dlt645.Animation{Seed: 1, ClockDriftPPM: 20})
	old := dlt645.NewMeter("000000000003", dlt645.V1997)
	old.SetFault(dlt645.Garbage(0.05))

	line := dlt645.NewLine(hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}, house, old)
	line.WireTime = true
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	fmt.Println(line.Serve(ctx, pty)) // until ctx ends
	fmt.Println(house.Address(), house.Version())
	// Output:
	// <nil>
	// 003411001043 DL/T 645-2007
}
