package main

import (
	"math"
	"time"

	"github.com/townlink/townlink/firmware-sim/dlt645sim"
	"github.com/townlink/townlink/firmware-sim/modbussim"
	"github.com/townlink/townlink/hardware"
)

// township is the demo scenario: enterprise-condition sensors on one
// RS-485 line. Keep doc.go's register map in step (TestDocListsEveryPoint
// checks it).
func township() Scenario {
	return Scenario{
		Name: "township",
		Lines: []Line{{
			Name: "RS485-1",
			Mode: hardware.Mode{Baud: 9600}, // 8N1
			Modbus: []ModbusDevice{
				{Unit: 1, Name: "chemical plant outlet", Points: []Point{
					{Name: "cod", Table: modbussim.HoldingRegisters, Addr: 0, Type: "float32", Order: modbussim.ABCD,
						Scale: "1", Unit: "mg/L", Range: "20..40, sine, 2 min period", Value: wave(30, 10, 2*time.Minute)},
					{Name: "temperature", Table: modbussim.InputRegisters, Addr: 10, Type: "int16",
						Scale: "0.1", Unit: "°C", Range: "18.0..30.0, sine, 5 min period", Value: wave(24, 6, 5*time.Minute)},
					{Name: "pump_running", Table: modbussim.Coils, Addr: 0, Type: "bool",
						Range: "on 30 s, off 30 s", Value: square(30*time.Second, 30*time.Second)},
				}},
				{Unit: 2, Name: "boiler room", Points: []Point{
					{Name: "pressure", Table: modbussim.HoldingRegisters, Addr: 0, Type: "uint16",
						Scale: "1", Unit: "kPa", Range: "350..450, sine, 90 s period", Value: wave(400, 50, 90*time.Second)},
					{Name: "reserved", Table: modbussim.HoldingRegisters, Addr: 1, Type: "uint16",
						Scale: "1", Range: "always 0 (lets 0..3 be read in one request)", Value: constant(0)},
					{Name: "running_hours", Table: modbussim.HoldingRegisters, Addr: 2, Type: "uint32", Order: modbussim.CDAB,
						Scale: "1", Unit: "h", Range: "12000 + 1 every 10 s (demo-accelerated counter)", Value: counter(12000, 10*time.Second)},
				}},
				{Unit: 3, Name: "archive room", Points: []Point{
					{Name: "door_open", Table: modbussim.DiscreteInputs, Addr: 0, Type: "bool",
						Range: "open 10 s of every 60 s", Value: square(10*time.Second, 50*time.Second)},
					{Name: "humidity", Table: modbussim.InputRegisters, Addr: 0, Type: "int16",
						Scale: "0.1", Unit: "%RH", Range: "40.0..70.0, sine, 200 s period", Value: wave(55, 15, 200*time.Second)},
				}},
			},
		}, {
			// Electricity and water meters share a 2400 8E1 line, as on a
			// residential riser: DL/T 645-2007 and CJ/T 188 frames interleave.
			Name: "RS485-2",
			Mode: hardware.Mode{Baud: 2400, Parity: hardware.ParityEven},
			Power: []PowerMeter{
				{Name: "township office", Address: "202611300001", Version: dlt645sim.V2007, Energy: "123456.78", Phases: 3},
				{Name: "service hall", Address: "202611300002", Version: dlt645sim.V2007, Energy: "8812.05", Phases: 3},
				{Name: "street lights", Address: "202611300003", Version: dlt645sim.V2007, Energy: "301.40", Phases: 1},
			},
			Water: []WaterMeter{
				{Name: "service hall water", Address: "20261130000101", Flow: "1024.50", LPerH: 900},
				{Name: "canteen water", Address: "20261130000102", Flow: "77.00", LPerH: 300},
			},
		}, {
			// An old DL/T 645-1997 meter on its own 1200 8E1 line.
			Name:  "RS485-3",
			Mode:  hardware.Mode{Baud: 1200, Parity: hardware.ParityEven},
			Power: []PowerMeter{{Name: "pumping station", Address: "199700000042", Version: dlt645sim.V1997, Energy: "45678.90", Phases: 3}},
		}},
		Inputs: []Input{
			waterMeterInput("DI1", 1),
			trafficInput("DI2", 2),
		},
	}
}

// wave is mid ± amp, a sine of the given period.
func wave(mid, amp float64, period time.Duration) func(time.Duration) float64 {
	return func(e time.Duration) float64 {
		return mid + amp*math.Sin(2*math.Pi*float64(e)/float64(period))
	}
}

// square is 1 for on, then 0 for off, repeating.
func square(on, off time.Duration) func(time.Duration) float64 {
	return func(e time.Duration) float64 {
		if e%(on+off) < on {
			return 1
		}
		return 0
	}
}

// counter starts at base and goes up by one every step.
func counter(base float64, step time.Duration) func(time.Duration) float64 {
	return func(e time.Duration) float64 { return base + float64(e/step) }
}

func constant(v float64) func(time.Duration) float64 {
	return func(time.Duration) float64 { return v }
}

// scenarios are the -scenario choices.
func scenarios() map[string]func() Scenario {
	return map[string]func() Scenario{"township": township}
}
