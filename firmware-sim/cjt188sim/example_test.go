package cjt188sim_test

import (
	"context"
	"fmt"
	"time"

	"github.com/townlink/townlink/firmware-sim/cjt188sim"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serialsim"
)

// A water meter sharing a PTY with other devices through a Multidrop.
func Example() {
	pty, err := serialsim.OpenPTY()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pty.Close()
	md := serialsim.NewMultidrop(pty)

	m := cjt188sim.NewMeter("00201510270588", cjt188sim.ColdWater)
	m.Set("flow_m3", "12.34")
	m.Animate(cjt188sim.Animation{FlowMLPerHour: 20_000})
	line := cjt188sim.NewLine(hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}, m)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- md.Run(ctx) }()
	fmt.Println(line.Serve(ctx, md.Attach()), <-done)
	fmt.Println(m.Address())
	// Output:
	// <nil> <nil>
	// 00201510270588
}
