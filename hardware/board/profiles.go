package board

// profiles returns every board profile, freshly built (no package state).
//
// A mapping marked Unsure comes from a typical layout and must be checked
// against the board's manual before it is trusted.
func profiles() []Profile {
	return []Profile{
		{
			Name: "generic-linux",
			Description: "Any Linux computer with USB RS-485 adapters and a GPIO chip whose " +
				"device tree names the digital inputs DI1..DI4 (gpio-line-names).",
			Source: "Linux conventions: USB serial adapters enumerate as /dev/ttyUSBn in plug order " +
				"(pin them with udev rules), the first on-board UART is /dev/ttyS0; the DI line " +
				"names are what a board's device tree should declare.",
			serial: []Entry{
				{Label: "RS485-1", Value: "/dev/ttyUSB0"},
				{Label: "RS485-2", Value: "/dev/ttyUSB1"},
				{Label: "RS232-1", Value: "/dev/ttyS0"},
			},
			gpio: []Entry{
				{Label: "DI1", Value: "DI1"},
				{Label: "DI2", Value: "DI2"},
				{Label: "DI3", Value: "DI3"},
				{Label: "DI4", Value: "DI4"},
			},
		},
		{
			Name: "rpi-cm4-din",
			Description: "A Raspberry Pi Compute Module 4 DIN-rail gateway of the common kind: two " +
				"RS-485 transceivers on the CM4's extra PL011 UARTs, one RS-232 on UART0, and four " +
				"opto-isolated digital inputs on BCM GPIOs. Not one vendor's board.",
			Source: "A typical layout, not a verified schematic. UARTs: Raspberry Pi OS with " +
				"dtoverlay=uart3 and dtoverlay=uart4 in config.txt and Bluetooth disabled; recent " +
				"kernels name them /dev/ttyAMA3 and /dev/ttyAMA4 after their serial aliases, older " +
				"ones number PL011s in probe order [unsure]. DI lines: the Raspberry Pi kernel names " +
				"the bcm2711 lines GPIO0..GPIO27; which four a board wires to its DIs varies [unsure].",
			serial: []Entry{
				{Label: "RS485-1", Value: "/dev/ttyAMA3", Unsure: true},
				{Label: "RS485-2", Value: "/dev/ttyAMA4", Unsure: true},
				{Label: "RS232-1", Value: "/dev/ttyAMA0", Unsure: true},
			},
			gpio: []Entry{
				{Label: "DI1", Value: "GPIO16", Unsure: true},
				{Label: "DI2", Value: "GPIO17", Unsure: true},
				{Label: "DI3", Value: "GPIO22", Unsure: true},
				{Label: "DI4", Value: "GPIO27", Unsure: true},
			},
		},
	}
}
