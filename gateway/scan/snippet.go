package scan

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/hardware"
)

// Snippet is the config to paste for a scan's results: a lines: entry
// for the line and the devices: entries that read what was found.
type Snippet struct {
	Lines   string // "lines:\n  - name: …" ; empty when the line is already configured
	Devices string // "devices:\n  - id: …"
}

// String is the two sections, ready to paste into a config file.
func (s Snippet) String() string { return s.Lines + s.Devices }

// LineEntry is the line the entries are for: its name and port as the
// config writes them; Known when the config has it already, at Mode.
type LineEntry struct {
	Name, Port string
	Known      bool
	Mode       hardware.Mode
}

// Config writes the entries for found on line. A line has one serial
// setting: a known line's, else the setting most devices answered at;
// devices found at another setting, and devices the drivers cannot read as
// they are (Found.Note), are written as comments saying why. For a known
// line the lines: entry is left out.
func Config(found []Found, l LineEntry) Snippet {
	line, port := l.Name, l.Port
	mode, ok := lineMode(found)
	if l.Known {
		mode, ok = l.Mode, true
	}
	var s Snippet
	if !l.Known && ok {
		var b strings.Builder
		b.WriteString("lines:\n")
		fmt.Fprintf(&b, "  - name: %s\n    port: %s\n    baud: %d\n    parity: %s\n", quote(line), quote(port), mode.Baud, mode.Parity)
		if mode.DataBits != 0 && mode.DataBits != 8 {
			fmt.Fprintf(&b, "    data_bits: %d\n", mode.DataBits)
		}
		if mode.StopBits == 2 {
			b.WriteString("    stop_bits: 2\n")
		}
		s.Lines = b.String()
	}
	if len(found) == 0 {
		return s
	}
	var b strings.Builder
	b.WriteString("devices:\n")
	for _, f := range found {
		entry := deviceEntry(f.Device)
		switch {
		case !sameMode(f.Mode, mode):
			fmt.Fprintf(&b, "  # %s %s answered at %s, not at the line's %s: give it a line of its own\n", f.Edition, f.Address(), f.Mode, mode)
			entry = commentOut(entry)
		case f.Note != "":
			fmt.Fprintf(&b, "  # %s\n", f.Note)
			entry = commentOut(entry)
		}
		b.WriteString(entry)
	}
	s.Devices = b.String()
	return s
}

// lineMode is the setting most devices answered at (the first such on a tie).
func lineMode(found []Found) (hardware.Mode, bool) {
	count := map[hardware.Mode]int{}
	var best hardware.Mode
	for _, f := range found {
		count[f.Mode]++
		if count[f.Mode] > count[best] {
			best = f.Mode
		}
	}
	return best, len(found) > 0
}

func commentOut(entry string) string {
	lines := strings.SplitAfter(strings.TrimSuffix(entry, "\n"), "\n")
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("  # " + strings.TrimPrefix(l, "  "))
	}
	b.WriteString("\n")
	return b.String()
}

// deviceEntry is one devices: item in the config's keys.
func deviceEntry(d config.Device) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - id: %s\n    driver: %s\n    line: %s\n", d.ID, d.Driver, quote(d.Line))
	switch d.Driver {
	case config.DriverDLT645, config.DriverDLT645v97:
		fmt.Fprintf(&b, "    address: %q\n", d.Address)
	case config.DriverCJT188:
		fmt.Fprintf(&b, "    address: %q\n", d.Address)
		if d.MeterType != config.DefaultMeterType {
			fmt.Fprintf(&b, "    meter_type: 0x%02X\n", d.MeterType)
		}
	case config.DriverModbus:
		fmt.Fprintf(&b, "    unit: %d\n", d.Unit)
		b.WriteString("    points:\n")
		for _, p := range d.Points {
			fmt.Fprintf(&b, "      - {name: %s, table: %s, address: %d", p.Name, p.Table, p.Address)
			if !p.Table.Bits() {
				fmt.Fprintf(&b, ", type: %s", p.Type)
			}
			b.WriteString("}\n")
		}
		if len(d.Points) == 0 {
			b.WriteString("      - {name: value, table: holding, address: 0, type: uint16}   # from the unit's manual\n")
		}
	}
	return b.String()
}

// quote writes s as a YAML scalar, quoted when it needs to be.
func quote(s string) string {
	plain := s != ""
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./", c)) {
			plain = false
		}
	}
	if plain && (s[0] < '0' || s[0] > '9') {
		return s
	}
	return strconv.Quote(s)
}

// sameMode compares settings with their defaults filled in.
func sameMode(a, b hardware.Mode) bool { return a.String() == b.String() }
