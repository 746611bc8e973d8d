package modbus_test

import (
	"context"
	"fmt"
	"time"

	"github.com/townlink/townlink/firmware-sim/modbus"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serialsim"
)

func Example() {
	// A boiler-room sensor: pressure in holding 0, a running-hours counter
	// low word first in holding 2-3.
	u := modbus.NewUnit(2)
	u.SetHolding(0, 412, 0)
	if err := u.SetUint32(modbus.HoldingRegisters, 2, 12000, modbus.CDAB); err != nil {
		fmt.Println(err)
		return
	}
	u.Animate(func(t time.Time, u *modbus.Unit) { u.SetHolding(0, uint16(400+t.Second())) })

	pty, err := serialsim.OpenPTY()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pty.Close()
	bus := modbus.NewBus(hardware.Mode{Baud: 9600}, u)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.Serve(ctx, pty) }()
	// … the gateway opens pty.Path() and polls unit 2 …
	u.SetFault(modbus.Silent().Times(3)) // it drops off the line for three polls
	cancel()
	fmt.Println(<-done)
	// Output: <nil>
}
