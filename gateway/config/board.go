package config

import (
	"path/filepath"

	"github.com/townlink/townlink/hardware/board"
)

// DefaultBoard is the board profile used when gateway.board is not set.
const DefaultBoard = "generic-linux"

// resolveLabels turns board labels (RS485-1, DI3) into device paths and GPIO
// lines, so a wrong label is a config error at its line and column, naming
// the labels the board has. Paths pass through unchanged.
func (d *decoder) resolveLabels(c *Config, p *parsed) {
	name := c.Gateway.Board
	if name == "" {
		name = DefaultBoard
	}
	prof, err := board.Lookup(name)
	if err != nil {
		d.errAt(valNode(&p.gw, "board"), "gateway.board", "%v", err)
		return
	}
	for i := range c.Lines {
		l, lf := &c.Lines[i], &p.lines[i]
		if l.Port == "" {
			continue
		}
		path, err := prof.Serial(l.Port)
		if err != nil {
			d.errAt(valNode(lf, "port"), join(lf.path, "port"), "%v (or write the device path, e.g. /dev/ttyUSB0)", err)
			continue
		}
		if !filepath.IsAbs(path) { // the gateway does not run where the file was written
			d.errAt(valNode(lf, "port"), join(lf.path, "port"), "%q is not an absolute path (write it from /, e.g. /dev/ttyUSB0)", clip(path))
			continue
		}
		l.Device = path
	}
	for i := range c.Devices {
		dv, df := &c.Devices[i], &p.devs[i]
		if dv.Pin == "" {
			continue
		}
		line, err := prof.GPIO(dv.Pin)
		if err != nil {
			d.errAt(valNode(df, "pin"), join(df.path, "pin"), "%v (or write the GPIO line name, e.g. gpiochip0:17)", err)
			continue
		}
		dv.PinLine = line
	}
}
