package pulse_test

import (
	"context"
	"fmt"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/pulse"
	"github.com/townlink/townlink/firmware-sim/pulsesim"
	"github.com/townlink/townlink/hardware/gpio"
	"github.com/townlink/townlink/hardware/gpiosim"
)

// A water meter giving one pulse per 10 L on a reed contact, read through a
// simulated line on a virtual clock. On a gateway the pin is
// gpio.NewInput(line, func(context.Context) (gpio.Line, error) { return gpio.Open(line) }, …)
// and the store is the gateway's.
func Example() {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	sim := gpiosim.New("DI1", gpiosim.Config{Virtual: true, Start: start, Level: gpio.Low})
	pin := gpio.NewInput("DI1", sim.Open, gpio.InputConfig{Clock: sim.Now})
	defer pin.Close()

	// 25 pulses, one every 2 s, each contact closure bouncing 3 times in 5 ms.
	train := pulsesim.Train{Start: start.Add(time.Second), Period: 2 * time.Second, High: 200 * time.Millisecond,
		Pulses: 25, Bounce: 5 * time.Millisecond, Bounces: 3, Seed: 1}
	go func() {
		_, _ = pulsesim.Play(context.Background(), sim, train.Edges())
		sim.End()
	}()

	dev, err := pulse.New(pulse.Config{
		Device: "wm-17", Input: pulse.Counter, Debounce: 20 * time.Millisecond,
		PerPulse: drivers.Dec(1, -2), Quantity: "flow_m3", Start: drivers.Dec(104250, -2), // 1042.50 m³
		Interval: 20 * time.Second, Store: &memStore{},
	}, pin)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_ = dev.Run(ctx, func(r drivers.Reading) error {
		fmt.Println(r.Time.Sub(start), r.Values["count"], r.Values["flow_m3"])
		if r.Time.Sub(start) >= time.Minute {
			cancel()
		}
		return nil
	})
	// Output:
	// 20s 10 1042.60
	// 40s 20 1042.70
	// 1m0s 25 1042.75
}
