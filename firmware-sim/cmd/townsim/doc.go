// Command townsim runs a simulated township's field devices on
// pseudo-terminals, so that the gateway can be run and demonstrated
// without hardware:
//
//	townsim -dir .demo/dev [-gpio .demo/gpio] [-scenario township] [-wire-time] [-faults 2=silent]
//
// For each serial line of the scenario it opens a PTY, links DIR/<line>
// to it (replacing a stale link, never a file), prints
//
//	line RS485-1 /abs/.demo/dev/RS485-1 -> /dev/pts/5 (modbus units 1,2,3)
//
// and for each digital input of the scenario it serves a Unix-domain
// socket GPIODIR/<input> (-gpio GPIODIR; by default "gpio" beside DIR, so
// -dir .demo/dev gives .demo/gpio; -gpio none serves no inputs) and prints
//
//	gpio DI1 /abs/.demo/gpio/DI1 (pulse water meter, 10 L/pulse, …)
//
// then a line "ready", and serves until SIGINT or SIGTERM, when it removes
// its links and sockets. The gateway opens DIR/<line> like any serial
// device (a PTY accepts any baud rate and parity). With -wire-time each reply is delayed
// by the request's and reply's time on the wire at the line's mode, plus
// t3.5, so that line timing is realistic.
//
// # Scenario "township"
//
// One line, RS485-1 at 9600 8N1, with three Modbus RTU units of
// enterprise-condition sensors. Addresses are protocol (PDU) addresses:
// holding 0 is "register 40001" in vendor manuals. Raw register value ×
// scale = engineering value. 32-bit orders: ABCD = high word first; CDAB =
// low word first. Values move over time (sines, a square wave, a counter)
// so that a dashboard shows life; registers not listed do not exist and
// reading them gives exception 02.
//
//	line     mode      unit  device                 point          table     addr  type     order  scale  unit  values
//	RS485-1  9600-8N1  1     chemical_plant_outlet  cod            holding   0     float32  ABCD   1      mg/L  20..40, sine, 2 min period
//	RS485-1  9600-8N1  1     chemical_plant_outlet  temperature    input     10    int16    -      0.1    °C    18.0..30.0, sine, 5 min period
//	RS485-1  9600-8N1  1     chemical_plant_outlet  pump_running   coil      0     bool     -      -      -     on 30 s, off 30 s
//	RS485-1  9600-8N1  2     boiler_room            pressure       holding   0     uint16   -      1      kPa   350..450, sine, 90 s period
//	RS485-1  9600-8N1  2     boiler_room            reserved       holding   1     uint16   -      1      -     always 0 (lets 0..3 be read in one request)
//	RS485-1  9600-8N1  2     boiler_room            running_hours  holding   2     uint32   CDAB   1      h     12000 + 1 every 10 s (demo-accelerated counter)
//	RS485-1  9600-8N1  3     archive_room           door_open      discrete  0     bool     -      -      -     open 10 s of every 60 s
//	RS485-1  9600-8N1  3     archive_room           humidity       input     0     int16    -      0.1    %RH   40.0..70.0, sine, 200 s period
//
// `townsim -list` prints the same table from the scenario value (a test
// keeps the two equal). The scenario is plain Go data in township.go: to
// add a line, append a Line with its name, mode and devices; other device
// types (DL/T 645, CJ/T 188 meters) get a field of their own in Line and a
// case in Line.build.
//
// # Digital inputs
//
// Digital inputs, played in real time from the start (firmware-sim/pulsesim;
// the gateway opens them with pin "sim:/abs/GPIODIR/DIn", see
// hardware/gpiosim's doc for the socket protocol):
//
//	input  wiring             signal
//	DI1    pulse water meter  10 L/pulse, 2 Hz from 1 s after start (72 m³/h, demo-accelerated), idle low, high 250 ms, 2 bounces within 3 ms of every edge
//	DI2    traffic loop       vehicles at random (Poisson, 0.5/s), idle low, high 300 ms per vehicle, ≥ 100 ms low between, 1 bounce within 1 ms
//
// Debounce 20 ms (the gateway's default) counts both exactly. A gateway
// that connects late, or again, gets the current level and the edges from
// then on: pulses while it is away are not seen, as on a real line.
//
// # Misbehaving devices
//
// While it runs, townsim reads commands on stdin (see -help), e.g.
//
//	fault 2 silent          unit 2 stops answering (the gateway should mark it down)
//	fault 2 exception:4     unit 2 answers every request with exception 04
//	fault 1 slow:2s         unit 1 answers 2 s late
//	fault 3 badcrc*5        unit 3's next 5 replies have a broken CRC
//	fault 2 none            back to normal
//	set 1 holding 0 16712 0 pin COD to 12.5 (0x4148 0000) until "resume 1"
//	stats                   requests, replies and faults per unit
//
// and the meter faults the early-warning rules watch for:
//
//	leak 20261130000101 3600        the hall's water meter runs 3.6 m³/h (a burst pipe)
//	phase 202611300001 b lose       the office meter loses phase B ("restore" brings it back)
//	outage RS485-2 on               every DL/T 645 meter on RS485-2 goes dark ("off" to end it)
//	silent 202611300002 on          the hall meter stops answering
//
// The same faults can be given at start: -faults 2=silent,3=exception:4.
package main
