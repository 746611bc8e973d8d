package dlt645_test

import (
	"context"
	"fmt"
	"time"

	"github.com/townlink/townlink/drivers/dlt645"
	"github.com/townlink/townlink/drivers/serialio"
	"github.com/townlink/townlink/hardware/serial"
	"github.com/townlink/townlink/hardware/serialsim"
)

// Decode a public reply (frames.json #6): phase A voltage of meter
// 003411001043.
func ExampleDecode() {
	raw := []byte{0xFE, 0xFE, 0xFE, 0xFE, 0x68, 0x43, 0x10, 0x00, 0x11, 0x34, 0x00, 0x68,
		0x91, 0x06, 0x33, 0x34, 0x34, 0x35, 0xCA, 0x55, 0xEE, 0x16}
	f, err := dlt645.Decode(raw)
	if err != nil {
		fmt.Println(err)
		return
	}
	item, _ := dlt645.Lookup(dlt645.V2007, 0x02010100)
	vals, _ := item.Values(f.Data[4:])
	fmt.Println(f.Addr, fmt.Sprintf("%02X", f.Control), vals["voltage_a_v"], item.Unit)
	// Output: 003411001043 91 229.7 V
}

// Poll a meter over a real pseudo-terminal: the gateway side opens the
// tty at 2400 8E1 like an RS-485 adapter; a few lines play the meter.
func ExampleMeter_Poll() {
	pty, err := serialsim.OpenPTY()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pty.Close()
	meterDone := make(chan struct{})
	go func() { // the meter: answer one read of 00010000 with 123456.78 kWh
		defer close(meterDone)
		req, err := serialio.ReadFrame(context.Background(), pty, time.Now().Add(5*time.Second), dlt645.Split)
		if err != nil {
			return
		}
		f, _ := dlt645.Decode(req)
		f.Control, f.Preamble = 0x91, 2
		f.Data = append(f.Data, 0x78, 0x56, 0x34, 0x12)
		pty.Write(dlt645.Encode(f))
	}()

	port, err := serial.Open(pty.Path(), dlt645.DefaultMode(dlt645.V2007))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer port.Close()
	m, err := dlt645.New(dlt645.Config{
		Device:  "meter-1",
		Address: "218231000114",
		Points:  []string{"energy_kwh"},
	}, port)
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
	fmt.Println(rs[0].Device, rs[0].Values["energy_kwh"])
	// Output: meter-1 123456.78
}
