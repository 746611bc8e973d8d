package dlt645sim_test

import (
	"context"
	"fmt"
	"time"

	"github.com/townlink/townlink/firmware-sim/dlt645sim"
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

	house := dlt645sim.NewMeter("003411001043", dlt645sim.V2007)
	house.SetPhases(1)
	house.Set("energy_kwh", "1234.56")
	house.Set("power_kw", "1.2000")
	house.Animate(dlt645sim.Animation{Seed: 1, ClockDriftPPM: 20})
	old := dlt645sim.NewMeter("000000000003", dlt645sim.V1997)
	old.SetFault(dlt645sim.Garbage(0.05))

	line := dlt645sim.NewLine(hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}, house, old)
	line.WireTime = true
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	fmt.Println(line.Serve(ctx, pty)) // until ctx ends
	fmt.Println(house.Address(), house.Version())
	// Output:
	// <nil>
	// 003411001043 DL/T 645-2007
}
