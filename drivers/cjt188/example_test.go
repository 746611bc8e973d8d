package cjt188_test

import (
	"context"
	"fmt"
	"time"

	"github.com/townlink/townlink/drivers/cjt188"
	"github.com/townlink/townlink/drivers/serialio"
	"github.com/townlink/townlink/hardware/serial"
	"github.com/townlink/townlink/hardware/serialsim"
)

// Decode a public 901F reply (frames.json #33).
func ExampleParseMeterData() {
	raw := []byte{0x68, 0x10, 0x88, 0x05, 0x27, 0x10, 0x15, 0x20, 0x00, 0x81, 0x16,
		0x90, 0x1F, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2C, 0x00, 0x00, 0x00, 0x00, 0x2C,
		0x06, 0x20, 0x17, 0x09, 0x01, 0x17, 0x20, 0x00, 0x00, 0x8E, 0x16}
	f, err := cjt188.Decode(raw)
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := cjt188.ParseMeterData(f.Data)
	if err != nil {
		fmt.Println(err)
		return
	}
	flow, _, _ := cjt188.Volume(d.Flow[:], d.FlowUnit)
	fmt.Println(f.Addr, flow, "m³", d.ClockString(), d.Valve())
	// Output: 00201510270588 0.00 m³ 2017-01-09 17:20:06 open
}

// Poll a water meter over a real pseudo-terminal opened at 2400 8E1 like
// an M-Bus converter; a few lines play the meter.
func ExampleMeter_Poll() {
	pty, err := serialsim.OpenPTY()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pty.Close()
	meterDone := make(chan struct{})
	go func() { // the meter: 1234.56 m³, valve closed, no clock
		defer close(meterDone)
		req, err := serialio.ReadFrame(context.Background(), pty, time.Now().Add(5*time.Second), cjt188.Split)
		if err != nil {
			return
		}
		f, _ := cjt188.Decode(req)
		f.Control, f.Preamble = 0x81, 2
		f.Data = append(f.Data[:3], 0x56, 0x34, 0x12, 0x00, 0x2C, 0x00, 0x00, 0x12, 0x00, 0x2C,
			0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x00)
		pty.Write(cjt188.Encode(f))
	}()

	port, err := serial.Open(pty.Path(), cjt188.DefaultMode())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer port.Close()
	// The meter's clock keeps local time: say which zone (never the
	// process's own).
	cst := time.FixedZone("CST", 8*3600)
	m, err := cjt188.New(cjt188.Config{Device: "water-7", Address: "00201510270588", Location: cst}, port)
	if err != nil {
		fmt.Println(err)
		return
	}
	rs, err := m.Poll(context.Background(), nil)
	<-meterDone
	if err != nil {
		fmt.Println(err)
		return
	}
	v := rs[0].Values
	fmt.Println(rs[0].Device, v["flow_m3"], v["settle_flow_m3"], v["valve"], v["battery_low"])
	// Output: water-7 1234.56 1200.00 closed false
}
