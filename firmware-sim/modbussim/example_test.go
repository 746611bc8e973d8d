package modbussim_test

import (
	"context"
	"fmt"
	"time"

	"github.com/townlink/townlink/firmware-sim/modbussim"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serialsim"
)

func Example() {
	// A boiler-room sensor: pressure in holding 0, a running-hours counter
	// low word first in holding 2-3.
	u := modbussim.NewUnit(2)
	u.SetHolding(0, 412, 0)
	if err := u.SetUint32(modbussim.HoldingRegisters, 2, 12000, modbussim.CDAB); err != nil {
		fmt.Println(err)
		return
	}
	u.Animate(func(t time.Time, u *modbussim.Unit) { u.SetHolding(0, uint16(400+t.Second())) })

	pty, err := serialsim.OpenPTY()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pty.Close()
	bus := modbussim.NewBus(hardware.Mode{Baud: 9600}, u)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.Serve(ctx, pty) }()
	// … the gateway opens pty.Path() and polls unit 2 …
	u.SetFault(modbussim.Silent().Times(3)) // it drops off the line for three polls
	cancel()
	fmt.Println(<-done)
	// Output: <nil>
}
