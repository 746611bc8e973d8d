package gpio_test

import (
	"context"
	"fmt"
	"time"

	"github.com/townlink/townlink/hardware/gpio"
	"github.com/townlink/townlink/hardware/gpiosim"
)

// A simulated line on a virtual clock, read through an Input: edges come
// with their exact timestamps, and a deadline passes without waiting.
// On a gateway the opener is func(context.Context) (gpio.Line, error) {
// return gpio.Open("DI1") }.
func ExampleInput() {
	ctx := context.Background()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	sim := gpiosim.New("DI1", gpiosim.Config{Virtual: true, Start: start})
	in := gpio.NewInput("DI1", sim.Open, gpio.InputConfig{Clock: sim.Now})
	defer in.Close()

	_ = sim.Push(ctx,
		gpio.Edge{Level: gpio.High, Time: start.Add(1500 * time.Microsecond)},
		gpio.Edge{Level: gpio.Low, Time: start.Add(4 * time.Millisecond)})
	sim.End()

	high, now, _ := in.Level(ctx)
	fmt.Println("level", high, "at", now.Sub(start))
	for {
		high, at, err := in.NextEdge(ctx, start.Add(time.Hour))
		if err != nil {
			fmt.Println("no more edges by", at.Sub(start))
			return
		}
		fmt.Println("edge to", high, "at", at.Sub(start))
	}
	// Output:
	// level false at 0s
	// edge to true at 1.5ms
	// edge to false at 4ms
	// no more edges by 1h0m0s
}
