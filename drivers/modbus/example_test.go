package modbus_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log"
	"maps"
	"slices"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/modbus"
	"github.com/townlink/townlink/firmware-sim/modbussim"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serial"
	"github.com/townlink/townlink/hardware/serialsim"
)

// The usual wiring, as the gateway does it: one RS-485 line opened by its
// path, one RTU transport, one Device per unit on that line. Here the line
// is a PTY whose other end is firmware-sim's Modbus slave standing in for
// a pump controller; on a gateway the path is e.g. /dev/ttyS1.
func Example() {
	mode := hardware.Mode{Baud: 9600} // 9600 8N1
	line, err := serialsim.OpenPTY()
	if err != nil {
		log.Fatal(err)
	}
	defer line.Close()
	pump := modbussim.NewUnit(1)
	pump.SetHolding(0, 2305) // 230.5 V
	if err := pump.SetUint32(modbussim.HoldingRegisters, 2, 74565, modbussim.CDAB); err != nil {
		log.Fatal(err)
	}
	pump.SetCoil(0, true)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- modbussim.NewBus(mode, pump).Serve(ctx, line) }()
	defer func() { cancel(); <-served }()

	port, err := serial.Open(line.Path(), mode)
	if err != nil {
		log.Fatal(err)
	}
	defer port.Close()
	meter, err := modbus.New(modbus.Config{
		Device: "pump-3",
		Unit:   1,
		Points: []modbus.Point{
			// Manual: "40001 voltage, 0.1 V" → holding 0, scale 0.1.
			{Name: "volt_v", Table: modbus.Holding, Address: 0, Scale: drivers.Dec(1, -1)},
			{Name: "energy_kwh", Table: modbus.Holding, Address: 2, Type: modbus.Uint32, Order: modbus.CDAB, Scale: drivers.Dec(1, -2)},
			{Name: "running", Table: modbus.Coil, Address: 0},
		},
	}, modbus.NewRTU(port, time.Second, 2))
	if err != nil {
		log.Fatal(err)
	}
	readings, err := meter.Poll(ctx, nil)
	if err != nil {
		log.Print(err) // some points may still have been read
	}
	for _, r := range readings {
		fmt.Println(r.Device, r.Values["volt_v"], r.Values["energy_kwh"], r.Values["running"])
	}
	// Output:
	// pump-3 230.5 745.65 true
}

// registers is a Transport that answers FC 3 from a slice, standing in
// for a device so the example can run.
type registers []uint16

func (r registers) Do(_ context.Context, unit byte, pdu []byte) ([]byte, error) {
	start, qty := binary.BigEndian.Uint16(pdu[1:]), binary.BigEndian.Uint16(pdu[3:])
	rep := []byte{pdu[0], byte(2 * qty)}
	for _, v := range r[start : start+qty] {
		rep = binary.BigEndian.AppendUint16(rep, v)
	}
	return rep, nil
}

func ExampleDevice_Poll() {
	dev, err := modbus.New(modbus.Config{
		Device: "meter-7",
		Unit:   7,
		Points: []modbus.Point{
			{Name: "volt_v", Address: 0, Scale: drivers.Dec(1, -1)},
			{Name: "power_kw", Address: 1, Type: modbus.Int16, Scale: drivers.Dec(1, -2)},
			{Name: "energy_kwh", Address: 2, Type: modbus.Uint32, Order: modbus.CDAB, Scale: drivers.Dec(1, -2)},
			{Name: "freq_hz", Address: 4, Type: modbus.Float32},
		},
	}, registers{2305, 0xFFFB, 0x2345, 0x0001, 0x4248, 0x0000})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(dev.Requests())
	readings, err := dev.Poll(context.Background(), nil)
	if err != nil {
		log.Fatal(err)
	}
	v := readings[0].Values
	for _, k := range slices.Sorted(maps.Keys(v)) {
		fmt.Println(k, v[k])
	}
	// Output:
	// [function 3 address 0..5]
	// energy_kwh 745.65
	// freq_hz 50
	// power_kw -0.05
	// volt_v 230.5
}
